"""What the catalog says about words: built once from every product, shipped to every replica.

Stream products through `add(...)`, then `freeze()`. The frozen vocabulary holds plain dicts
and bytes only, so it pickles compactly (`to_bytes` / `from_bytes`). It records:

- document frequencies of the words of titles, brands and category names (one count per
  product), the spelling dictionary and the evidence for brand recognition;
- known brands (`normalize_key` form, with the display form seen first);
- known colors ("color"/"colour" attributes) and sizes ("size"), as normalized values;
- per word, its product counts in the top categories (leaf and ancestors) for prediction.
"""

from __future__ import annotations

import heapq
import pickle
import zlib
from array import array
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from operator import itemgetter

from domain.query._text import tokenize
from domain.search import normalize_key

ATTRIBUTE_KINDS: dict[str, str] = {"color": "color", "colour": "color", "size": "size"}
BRAND_MIN_SHARE = 0.25  # one-word brand: products of that brand / products with the word
BRAND_MIN_SHARE_PHRASE = 0.05  # several words: a phrase is much more specific than a word
_MAX_VALUE_LEN = 40  # longer attribute values are descriptions, not colors or sizes


class CatalogVocabulary:
    def __init__(self) -> None:
        self.doc_count = 0
        self.frozen = False
        self._word_count: Counter[str] = Counter()  # build only
        self._df: dict[str, int] = {}  # frozen: the words kept
        self._leaf_words: dict[int, Counter[str]] = {}  # build only: leaf -> word -> products
        self._token_cache: dict[str, tuple[str, ...]] = {}  # build only: brands, category names
        self._brand_count: dict[str, int] = {}
        self._brand_display: dict[str, str] = {}
        self._values: dict[str, dict[str, int]] = {"color": {}, "size": {}}
        self._value_names: dict[str, dict[str, int]] = {"color": {}, "size": {}}
        self._ancestors: dict[int, tuple[int, ...]] = {}
        self._category_docs: dict[int, int] = {}
        # frozen lookups
        self._categories: list[int] = []  # dense index -> category id
        self._word_categories: dict[str, bytes] = {}  # array("I"): (dense index, count) pairs
        self._phrases: dict[str, dict[tuple[str, ...], str]] = {}  # kind -> tokens -> value
        self._max_len: dict[str, int] = {}
        self._names: dict[str, str] = {}  # kind -> the attribute name the documents use

    def add(
        self,
        title: str,
        brand: str | None = None,
        category_id: int | None = None,
        category_ids: Sequence[int] = (),
        category_names: Sequence[str] = (),
        attributes: Mapping[str, Sequence[str] | str] | None = None,
    ) -> None:
        """One product. `category_ids`: the leaf and its ancestors; without `category_id` the
        last of them is taken as the leaf (root-to-leaf order)."""
        if self.frozen:
            raise RuntimeError("vocabulary is frozen")
        self.doc_count += 1
        words = set(tokenize(title))
        key = normalize_key(brand) if brand else ""
        if brand and key:
            self._brand_count[key] = self._brand_count.get(key, 0) + 1
            if key not in self._brand_display:
                self._brand_display[key] = " ".join(brand.split())
            words.update(self._tokens(key))
        for name in category_names:
            words.update(self._tokens(name))
        for w in [w for w in words if "-" in w]:
            words.update(p for p in w.split("-") if p)
        self._word_count.update(words)
        leaf = category_id
        if leaf is None and category_ids:
            leaf = category_ids[-1]
        if leaf is not None:
            self._add_category(leaf, category_ids, words)
        for name, values in (attributes or {}).items():
            kind = ATTRIBUTE_KINDS.get(normalize_key(name))
            if kind is None:
                continue
            names = self._value_names[kind]
            names[normalize_key(name)] = names.get(normalize_key(name), 0) + 1
            counts = self._values[kind]
            for v in (values,) if isinstance(values, str) else values:
                value = normalize_key(v)
                if value and len(value) <= _MAX_VALUE_LEN:
                    counts[value] = counts.get(value, 0) + 1

    def _tokens(self, text: str) -> tuple[str, ...]:
        tokens = self._token_cache.get(text)
        if tokens is None:
            tokens = self._token_cache[text] = tuple(tokenize(text))
        return tokens

    def _add_category(self, leaf: int, category_ids: Sequence[int], words: set[str]) -> None:
        ancestors = self._ancestors.get(leaf)
        if ancestors is None:
            ancestors = tuple(c for c in dict.fromkeys(category_ids) if c != leaf)
            self._ancestors[leaf] = ancestors
        docs = self._category_docs
        for c in (leaf, *ancestors):
            docs[c] = docs.get(c, 0) + 1
        counter = self._leaf_words.get(leaf)
        if counter is None:
            counter = self._leaf_words[leaf] = Counter()
        counter.update(words)

    def freeze(
        self,
        *,
        min_count: int = 2,
        keep_all_below: int = 50_000,
        max_words: int = 500_000,
        top_categories: int = 10,
        min_category_df: int = 3,
    ) -> CatalogVocabulary:
        """Ends the build. Above `keep_all_below` distinct words (or brands, or values), drops
        those seen fewer than `min_count` times; keeps at most `max_words` words, and per word
        of at least `min_category_df` products the `top_categories` categories it occurs in
        most (counting ancestors). Returns self."""
        if self.frozen:
            return self
        df = dict(self._word_count)
        self._word_count = Counter()
        if len(df) > keep_all_below:
            df = {w: n for w, n in df.items() if n >= min_count}
        if len(df) > max_words:
            df = dict(heapq.nlargest(max_words, df.items(), key=lambda kv: kv[1]))
        self._df = df
        self._pack_categories(min_category_df, top_categories)
        brands = _prune(self._brand_count, min_count, keep_all_below)
        self._brand_count = brands
        self._brand_display = {k: self._brand_display[k] for k in brands}
        self._phrases["brand"] = _phrase_table(brands)
        for kind in ("color", "size"):
            values = _prune(self._values[kind], min_count, keep_all_below)
            self._phrases[kind] = _phrase_table(values)
            names = self._value_names[kind]
            self._names[kind] = max(names, key=lambda n: names[n]) if names else kind
        self._values = {"color": {}, "size": {}}
        self._token_cache = {}
        self._max_len = {k: max(map(len, t), default=0) for k, t in self._phrases.items()}
        self.frozen = True
        return self

    def _pack_categories(self, min_df: int, top: int) -> None:
        df = self._df
        per_word: dict[str, list[int]] = {}  # word -> [leaf, count, leaf, count, ...]
        for leaf, counter in self._leaf_words.items():
            for w, n in counter.items():
                if df.get(w, 0) >= min_df:
                    pairs = per_word.get(w)
                    if pairs is None:
                        per_word[w] = [leaf, n]
                    else:
                        pairs += (leaf, n)
        self._leaf_words = {}
        lineage = {leaf: (leaf, *up) for leaf, up in self._ancestors.items()}
        by_count = itemgetter(1)
        dense: dict[int, int] = {}
        for w, pairs in per_word.items():
            counts: dict[int, int] = {}
            for i in range(0, len(pairs), 2):
                n = pairs[i + 1]
                for c in lineage[pairs[i]]:
                    counts[c] = counts.get(c, 0) + n
            best = sorted(counts.items(), key=by_count, reverse=True)[:top]
            packed = array("I", [x for c, n in best for x in (dense.setdefault(c, len(dense)), n)])
            self._word_categories[w] = packed.tobytes()
        self._categories = list(dense)

    # -- lookups (frozen) --------------------------------------------------------------------

    def df(self, word: str) -> int:
        """Products whose title, brand or category names contain `word`."""
        return self._df.get(word, 0)

    def __contains__(self, word: object) -> bool:
        return word in self._df

    def __len__(self) -> int:
        return len(self._df)

    def words(self) -> Iterator[tuple[str, int]]:
        return iter(self._df.items())

    def brand(self, tokens: tuple[str, ...]) -> str | None:
        """The brand key these tokens name, if the catalog makes that likely: the brand's
        products must be a fair share of the products containing its rarest word."""
        key = self._phrases.get("brand", {}).get(tokens)
        if key is None:
            return None
        n = self._brand_count[key]
        share = n / max(n, min(self._df.get(t, 0) for t in tokens))
        needed = BRAND_MIN_SHARE if len(tokens) == 1 else BRAND_MIN_SHARE_PHRASE
        return key if share >= needed else None

    def brand_display(self, key: str) -> str | None:
        return self._brand_display.get(key)

    def value(self, kind: str, tokens: tuple[str, ...]) -> str | None:
        """The known attribute value ("color" or "size") these tokens spell, if any."""
        return self._phrases.get(kind, {}).get(tokens)

    def max_phrase_len(self, kind: str) -> int:
        return self._max_len.get(kind, 0)

    def attribute_name(self, kind: str) -> str:
        """The attribute name documents use for `kind` ("color" or "colour", "size")."""
        return self._names.get(kind, kind)

    def category_counts(self, word: str) -> list[tuple[int, int]]:
        """(category id, products with the word in it), most first; ancestors count."""
        packed = self._word_categories.get(word)
        if not packed:
            return []
        a = array("I")
        a.frombytes(packed)
        ids = self._categories
        return [(ids[a[i]], a[i + 1]) for i in range(0, len(a), 2)]

    def category_docs(self, category_id: int) -> int:
        return self._category_docs.get(category_id, 0)

    def ancestors(self, category_id: int) -> tuple[int, ...]:
        return self._ancestors.get(category_id, ())

    def to_bytes(self) -> bytes:
        return zlib.compress(pickle.dumps(self, protocol=pickle.HIGHEST_PROTOCOL), 6)

    @staticmethod
    def from_bytes(data: bytes) -> CatalogVocabulary:
        """Trusted input only (pickle)."""
        vocab = pickle.loads(zlib.decompress(data))
        if not isinstance(vocab, CatalogVocabulary):
            raise TypeError("not a CatalogVocabulary")
        return vocab


def _prune(counts: dict[str, int], min_count: int, keep_all_below: int) -> dict[str, int]:
    if len(counts) <= keep_all_below:
        return counts
    return {k: n for k, n in counts.items() if n >= min_count}


def _phrase_table(counts: dict[str, int]) -> dict[tuple[str, ...], str]:
    """Token tuple -> value; where two values tokenize alike, the more frequent wins."""
    table: dict[tuple[str, ...], str] = {}
    for value, _ in sorted(counts.items(), key=lambda kv: kv[1]):
        tokens = tuple(tokenize(value))
        if tokens:
            table[tokens] = value
    return table
