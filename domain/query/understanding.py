"""Query understanding: from the text a shopper typed to words to match, filters and boosts.

    tokenize -> price/rating phrases -> spell correct -> brands, sizes, colors
             -> keywords -> synonym groups -> category prediction

Pure and synchronous; one `QueryUnderstanding` per replica (its spelling index is built in the
constructor and is not pickled: ship the vocabulary, build this at start-up).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from domain.query import _entities
from domain.query._categories import predict_categories
from domain.query._numeric import CURRENCY, FILLERS, UNITS, extract_numeric
from domain.query._spelling import SpellCorrector, is_correctable
from domain.query._text import QUERY_WORDS, STOPWORDS, hyphen_parts, tokenize
from domain.query.synonyms import Synonyms
from domain.query.vocabulary import CatalogVocabulary
from domain.search import Filters

MAX_QUERY_CHARS = 2_000  # the rest of a longer query is ignored
MAX_TOKENS = 32  # so is every token after these
_RESERVED = STOPWORDS | QUERY_WORDS | CURRENCY | UNITS | FILLERS


@dataclasses.dataclass(frozen=True, slots=True)
class ParsedQuery:
    raw: str
    normalized: str  # the tokens, one space apart
    keywords: tuple[str, ...]  # corrected words left after extracting filters, stopwords out
    groups: tuple[tuple[str, ...], ...]  # per keyword: the word, then its alternatives
    did_you_mean: str | None  # the normalized query with corrections, when there are some
    brands: tuple[str, ...] = ()  # brand keys (domain.search.normalize_key)
    price_min: float | None = None
    price_max: float | None = None
    rating_min: float | None = None
    attributes: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (("color", ("red",)),)
    categories: tuple[tuple[int, float], ...] = ()  # predicted (category id, probability)
    corrections: tuple[tuple[str, str], ...] = ()  # (typed, corrected)
    # every word searched again when filters read from the words are set aside (brand and
    # color words included; price phrases and stopwords out), corrected, with alternatives
    all_groups: tuple[tuple[str, ...], ...] = ()


class QueryUnderstanding:
    def __init__(
        self,
        vocabulary: CatalogVocabulary,
        synonyms: Synonyms | None = None,
        *,
        rare_max: int = 2,
        rare_ratio: float = 50.0,
        max_spelling_words: int = 200_000,
    ) -> None:
        """`rare_max`, `rare_ratio`: a word the catalog has at most `rare_max` times is still
        corrected (distance 1 only) to a word `rare_ratio` times more frequent."""
        if not vocabulary.frozen:
            raise ValueError("freeze() the vocabulary first")
        self.vocabulary = vocabulary
        self.synonyms = synonyms or Synonyms()
        self.rare_max = rare_max
        self.rare_ratio = rare_ratio
        extra = ((w, 1) for w in self.synonyms.words if w not in vocabulary)
        self._speller = SpellCorrector(
            [*vocabulary.words(), *extra], max_words=max_spelling_words
        )

    def correct(self, word: str) -> str | None:
        """The spelling correction of one token, or None to keep it as typed."""
        if len(word) < 4 or word in _RESERVED or word in self.synonyms.words:
            return None
        if not is_correctable(word):
            return None
        df = self.vocabulary.df(word)
        if df > self.rare_max or (df == 0 and self._inflection_known(word)):
            return None
        found = self._speller.suggest(word, max_distance=1 if df else 2)
        if found is None or (df and found[2] < self.rare_ratio * df):
            return None
        return found[0]

    def _inflection_known(self, word: str) -> bool:
        """"dresses" when the catalog says "dress", "shoe" when it says "shoes": not typos
        (the index stems), and no reason to "correct" them to "dresser" or the like."""
        if word.endswith("s"):  # "wireles" is not the singular of "wireless"
            forms = [word[:-1], word[:-3] + "y" if word.endswith("ies") else word[:-2]]
        else:
            forms = [word + "s", word + "es"]
        for suffix in ("ing", "ed"):
            if word.endswith(suffix):
                forms += [word[: -len(suffix)], word[: -len(suffix)] + "e"]
        return any(len(f) >= 3 and f in self.vocabulary for f in forms)

    def parse(self, q: str, explicit: Filters | None = None) -> ParsedQuery:
        """`explicit`: the request's own filters. A field they set is not inferred. Words
        that would have been (a brand, a color, a size) stay keywords where the field's value
        is another ("sony" with brand=bose); where it is one of theirs ("red dress" with
        color=red), they are read as without it, so choosing a value the words inferred shows
        what was counted under it."""
        explicit = explicit or Filters()
        tokens = tokenize(q[:MAX_QUERY_CHARS])[:MAX_TOKENS]
        numeric = extract_numeric(tokens)
        blocked = set(numeric.consumed)
        words = list(tokens)
        corrections: list[tuple[str, str]] = []
        for i, t in enumerate(tokens):
            if i not in blocked and (fixed := self.correct(t)) is not None:
                words[i] = fixed
                corrections.append((t, fixed))
        vocab = self.vocabulary
        brands, used = _entities.extract(vocab, "brand", words, blocked)
        if _theirs(brands, explicit.brands):
            blocked |= used
        brands = [] if explicit.brands else brands
        chosen = dict(explicit.attributes)
        attributes: list[tuple[str, tuple[str, ...]]] = []
        variant_words: set[int] = set()  # colors and sizes say nothing about the category
        for kind in ("size", "color"):
            name = vocab.attribute_name(kind)
            values, used = _entities.extract(vocab, kind, words, blocked)
            taken = blocked | used
            rest = [i for i in range(len(words)) if i not in taken]
            if not values or (kind == "color" and all(words[i] in STOPWORDS for i in rest)):
                continue
            if _theirs(values, chosen.get(name, ())):
                if name not in chosen:
                    attributes.append((name, tuple(values)))
                blocked |= used
                variant_words |= used
        left = [words[i] for i in range(len(words)) if i not in blocked]
        keywords = [w for w in left if w not in STOPWORDS] or left
        skip = numeric.consumed | variant_words
        content = [w for i, w in enumerate(words) if i not in skip and w not in STOPWORDS]
        every = [w for i, w in enumerate(words) if i not in numeric.consumed]
        every = [w for w in every if w not in STOPWORDS] or every
        return ParsedQuery(
            raw=q,
            normalized=" ".join(tokens),
            keywords=tuple(keywords),
            groups=self._groups(keywords, dict(corrections)),
            did_you_mean=" ".join(words) if corrections else None,
            brands=tuple(brands),
            price_min=None if explicit.price_min is not None else numeric.price_min,
            price_max=None if explicit.price_max is not None else numeric.price_max,
            rating_min=None if explicit.rating_min is not None else numeric.rating_min,
            attributes=tuple(attributes),
            # a category chosen in the request makes a prediction moot
            categories=() if explicit.category_ids else predict_categories(vocab, content),
            corrections=tuple(corrections),
            all_groups=self._groups(every, dict(corrections)),
        )

    def _groups(
        self, keywords: list[str], corrections: dict[str, str]
    ) -> tuple[tuple[str, ...], ...]:
        typed = {fixed: t for t, fixed in corrections.items()}
        syn = self.synonyms
        groups: list[tuple[str, ...]] = []
        i = 0
        while i < len(keywords):
            for n in range(min(syn.max_len, len(keywords) - i), 1, -1):  # phrases first
                alts = syn.expand(tuple(keywords[i : i + n]))
                if alts:
                    phrase = " ".join(keywords[i : i + n])
                    groups.append(tuple(dict.fromkeys((phrase, *alts))))
                    i += n
                    break
            else:
                groups.append(self._alternatives(keywords[i], typed.get(keywords[i])))
                i += 1
        return tuple(groups)

    def _alternatives(self, word: str, typed: str | None) -> tuple[str, ...]:
        alts = [word]
        if typed is not None and self.vocabulary.df(typed):  # a rare spelling the catalog has
            alts.append(typed)
        parts = hyphen_parts(word)
        if len(parts) > 1:
            alts.append(" ".join(parts))
            if "".join(parts) in self.vocabulary:
                alts.append("".join(parts))
        alts.extend(self.synonyms.expand((word,)))
        return tuple(dict.fromkeys(alts))


def _theirs(read: Sequence[str], chosen: Sequence[str]) -> bool:
    """Whether values read from the words stand as the words' meaning: none chosen in the
    request for their field, or one of those chosen read ("red blue dress" with color=red:
    one value of what its facet offered, counted over "dress")."""
    return bool(read) and (not chosen or bool(set(read) & set(chosen)))
