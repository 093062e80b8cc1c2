"""Catalog model for the seller write API: the product body, and the rules it must satisfy.

`ProductIn` checks each field on its own (types, ranges, text hygiene); `check_product`
checks the rules across fields and the configured limits. Both report every bad field at once,
keyed by a dotted path ("variants.1.sku").
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Mapping
from typing import Annotated, Literal
from urllib.parse import urlparse

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from domain.errors import ValidationFailed
from domain.search import normalize_key

MAX_PRICE_CENTS = 100_000_000_00  # $100M: anything above is a typo, not a price
SKU_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-/]{0,63}", re.ASCII)
CATEGORY_PATTERN = re.compile(r"(?:CAT_)?([0-9]{1,9})", re.ASCII)


_BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _fits(value: str, max_length: int) -> str:
    """Lengths are checked after normalization (NFC can lengthen text)."""
    if len(value) > max_length:
        raise ValueError(f"must be at most {max_length} characters")
    return value


def _visible(value: str) -> bool:
    return any(unicodedata.category(c)[0] not in ("C", "Z") for c in value)


def clean_text(value: str, *, multiline: bool = False) -> str:
    """NFC-normalized text without control characters (newlines/tabs only when multiline)."""
    value = unicodedata.normalize("NFC", value)
    allowed = {"\n", "\t", "\r"} if multiline else set()
    for ch in value:
        cat = unicodedata.category(ch)
        if ch in allowed:
            continue
        if cat == "Cc" or (not multiline and cat in ("Zl", "Zp")) or ch in _BIDI_CONTROLS:
            raise ValueError(f"contains the control character U+{ord(ch):04X}")
        if cat == "Cs":
            raise ValueError(f"contains the unpaired surrogate U+{ord(ch):04X}")
    return value


def _line(value: str) -> str:
    return clean_text(value).strip()


def fitted_line(value: str, max_length: int) -> str:
    """One line of text as the catalog keeps it (clean_text, trimmed), at most `max_length`
    characters once normalized (ValueError naming the problem)."""
    return _fits(_line(value), max_length)


def _category_id(v: object) -> int:
    if isinstance(v, int) and not isinstance(v, bool) and 0 < v < 2**31:
        return v
    if isinstance(v, str):
        m = CATEGORY_PATTERN.fullmatch(v.strip())
        if m and int(m.group(1)) > 0:
            return int(m.group(1))
    raise ValueError("must be a category id such as 12 or CAT_12")


class VariantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: str = Field(min_length=1, max_length=64)
    attributes: dict[str, str | list[str]] = Field(default_factory=dict)
    # a listed variant costs something (0 is a seller's slip, not a giveaway: offers and
    # price changes refuse it too)
    price_cents: StrictInt = Field(ge=1, le=MAX_PRICE_CENTS)
    compare_price_cents: StrictInt | None = Field(default=None, ge=1, le=MAX_PRICE_CENTS)
    weight_grams: StrictInt | None = Field(default=None, ge=0, le=10_000_000)
    status: Literal["ACTIVE", "INACTIVE"] = "ACTIVE"

    @field_validator("sku")
    @classmethod
    def _sku(cls, v: str) -> str:
        if not SKU_PATTERN.fullmatch(v):
            raise ValueError("must be 1-64 of letters, digits, . _ - / starting alphanumeric")
        return v

    @field_validator("attributes")
    @classmethod
    def _attributes(cls, v: dict[str, str | list[str]]) -> dict[str, str | list[str]]:
        if len(v) > 30:
            raise ValueError("at most 30 attributes")
        out: dict[str, str | list[str]] = {}
        for key, val in v.items():
            k = _line(key)
            if not 1 <= len(k) <= 64:
                raise ValueError(f"attribute name {key!r} must be 1-64 characters")
            # " color ", "Color" and "color": one name (as search and filters read it)
            if normalize_key(k) in {normalize_key(n) for n in out}:
                raise ValueError(f"attribute {k!r} is named twice")
            vals = [val] if isinstance(val, str) else val
            if not 1 <= len(vals) <= 50:
                raise ValueError(f"attribute {k!r} must have 1-50 values")
            cleaned = [_line(x) for x in vals]
            if any(not 1 <= len(x) <= 200 for x in cleaned):
                raise ValueError(f"values of attribute {k!r} must be 1-200 characters")
            if len({normalize_key(x) for x in cleaned}) < len(cleaned):
                raise ValueError(f"attribute {k!r} has a value twice")
            out[k] = cleaned[0] if isinstance(val, str) else cleaned
        return out


def shop_path(url: str) -> bool:
    """A url that is a path on this shop (`/media/...`): uploaded images are served there
    unless a CDN serves them (AISLE_MEDIA_BASE_URL). A product may show one only if it is an
    upload of that product."""
    return url.startswith("/") and not url.startswith("//")


class ImageIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=500)
    position: StrictInt | None = Field(default=None, ge=0, le=1000)
    alt_text: str = Field(default="", max_length=300)
    variant_sku: str | None = None  # image of one variant; None: of every variant

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        v = _fits(_line(v), 500)
        if " " not in v and "\\" not in v and shop_path(v):
            return v  # an upload's: that it is one of this product's is checked on writing
        parts = urlparse(v)
        if parts.scheme not in ("http", "https") or not parts.netloc or " " in v:
            raise ValueError("must be an absolute http(s) URL, or the url of an image "
                             "uploaded to this product")
        return v

    @field_validator("alt_text")
    @classmethod
    def _alt(cls, v: str) -> str:
        return _fits(_line(v), 300)


class ProductIn(BaseModel):
    """Body of POST and PUT /api/v1/seller/products."""

    model_config = ConfigDict(extra="forbid")

    # the raw text's bounds are loose (decomposed text is longer): the validators check the
    # lengths of the normalized text the catalog keeps
    title: str = Field(min_length=1, max_length=4 * 500)
    description: str = Field(default="", max_length=4 * 20_000)
    category_id: Annotated[int, BeforeValidator(_category_id)] = Field(
        description="a category id, as 12 or \"CAT_12\""
    )
    brand: str | None = Field(default=None, max_length=4 * 200)
    external_id: str | None = Field(default=None, min_length=1, max_length=4 * 128)
    status: Literal["DRAFT", "ACTIVE", "INACTIVE"] = "ACTIVE"
    variants: list[VariantIn] = Field(min_length=1)
    images: list[ImageIn] = Field(default_factory=list)
    version: StrictInt | None = Field(default=None, ge=1)  # PUT: the version the client read

    @field_validator("title")
    @classmethod
    def _title(cls, v: str) -> str:
        v = _fits(_line(v), 500)
        if not _visible(v):
            raise ValueError("must not be blank")
        return v

    @field_validator("brand", "external_id")
    @classmethod
    def _single_line(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is None:
            return None
        v = _fits(_line(v), 128 if info.field_name == "external_id" else 200)
        if not _visible(v):
            raise ValueError("must not be blank")
        return v

    @field_validator("description")
    @classmethod
    def _description(cls, v: str) -> str:
        return _fits(clean_text(v, multiline=True).strip(), 20_000)



@dataclasses.dataclass(frozen=True)
class Limits:
    max_variants: int = 100
    max_images: int = 20


def check_product(product: ProductIn, limits: Limits) -> None:
    """Rules across fields; raises ValidationFailed naming every bad field."""
    fields: dict[str, str] = {}
    if len(product.variants) > limits.max_variants:
        fields["variants"] = f"at most {limits.max_variants} variants per product"
    if len(product.images) > limits.max_images:
        fields["images"] = f"at most {limits.max_images} images per product"
    seen: dict[str, int] = {}
    for i, v in enumerate(product.variants):
        key = v.sku.lower()
        if key in seen:
            fields[f"variants.{i}.sku"] = f"duplicate SKU {v.sku!r} (also variants.{seen[key]})"
        else:
            seen[key] = i
        if v.compare_price_cents is not None and v.compare_price_cents < v.price_cents:
            fields[f"variants.{i}.compare_price_cents"] = "must not be below price_cents"
    skus = {v.sku for v in product.variants}
    for i, img in enumerate(product.images):
        if img.variant_sku is not None and img.variant_sku not in skus:
            fields[f"images.{i}.variant_sku"] = "names no variant of this product"
    if fields:
        raise ValidationFailed(fields)


# -- versions ------------------------------------------------------------------------------
JsonObject = Mapping[str, object]


def _objects(value: object) -> list[JsonObject]:
    return [v for v in value if isinstance(v, Mapping)] if isinstance(value, list) else []


@dataclasses.dataclass(frozen=True)
class ProductSnapshot:
    """A product version as stored (`product_versions.snapshot`: its rows, as JSON)."""

    product: JsonObject
    variants: list[JsonObject]
    images: list[JsonObject]

    @classmethod
    def of(cls, snapshot: JsonObject) -> ProductSnapshot:
        product = snapshot.get("product")
        return cls(product if isinstance(product, Mapping) else {},
                   _objects(snapshot.get("variants")), _objects(snapshot.get("images")))

    @property
    def title(self) -> str:
        return str(self.product.get("title", ""))

    @property
    def status(self) -> str:
        return str(self.product.get("status", ""))

    def as_product(self) -> ProductIn:
        """The version as a seller would write it (restoring it writes this as the next
        version: variants matched by SKU keep their ids). ValidationFailed naming `version`
        if it no longer passes today's rules (e.g. its category is gone)."""
        try:
            return ProductIn.model_validate(self.as_body())
        except ValidationError as exc:
            raise ValidationFailed(
                {"version": f"cannot be restored as it is: {exc.errors()[0]['msg']}"},
                "the version does not pass today's rules") from exc

    def as_body(self) -> dict[str, object]:
        """The version as a PUT body, unchecked (a version written under older rules, a
        price of 0, is still shown as it was)."""
        sku_of = {v.get("variant_id"): v.get("sku") for v in self.variants}
        p = self.product
        status = p.get("status")
        return {
            "title": p.get("title"), "description": p.get("description") or "",
            "category_id": p.get("category_id"), "brand": p.get("brand"),
            "external_id": p.get("external_id"),
            "status": status if status in ("DRAFT", "ACTIVE", "INACTIVE") else "ACTIVE",
            "variants": [{"sku": v.get("sku"), "attributes": v.get("attributes") or {},
                          "price_cents": v.get("price_cents"),
                          "compare_price_cents": v.get("compare_price_cents"),
                          "weight_grams": v.get("weight_grams"),
                          "status": "ACTIVE" if v.get("status") == "ACTIVE"
                          else "INACTIVE"} for v in self.variants],
            "images": [{"url": i.get("url"), "position": i.get("position"),
                        "alt_text": i.get("alt_text") or "",
                        "variant_sku": sku_of.get(i.get("variant_id"))}
                       for i in self.images
                       if i.get("variant_id") is None or i.get("variant_id") in sku_of],
        }
