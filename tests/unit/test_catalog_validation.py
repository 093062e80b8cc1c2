"""The product body's rules, without HTTP or a database."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.catalog import Limits, ProductIn, check_product, clean_text
from domain.errors import ValidationFailed


def product(**over: Any) -> dict[str, Any]:
    b: dict[str, Any] = {"title": "Mug", "category_id": 3,
                         "variants": [{"sku": "MUG-1", "price_cents": 1299}]}
    b.update(over)
    return b


def errors_of(body: dict[str, Any]) -> dict[str, str]:
    try:
        check_product(ProductIn.model_validate(body), Limits(max_variants=3, max_images=2))
    except ValidationError as exc:
        return {".".join(str(p) for p in e["loc"]): e["msg"] for e in exc.errors()}
    except ValidationFailed as exc:
        return exc.fields
    return {}


def test_a_valid_product_passes_and_is_normalized() -> None:
    p = ProductIn.model_validate(product(title="  Cafe\u0301 mug ", category_id="CAT_7",
                                         description="line one\nline two\t."))
    check_product(p, Limits())
    assert p.title == "Café mug"  # NFC, trimmed
    assert p.category_id == 7
    assert p.description == "line one\nline two\t."


def test_lengths_are_those_of_the_normalized_text() -> None:
    decomposed = "e\u0301" * 260  # 520 characters sent, 260 kept
    assert ProductIn.model_validate(product(title=decomposed, brand=decomposed[:300])
                                    ).title == "\u00e9" * 260
    assert "title" in errors_of(product(title="\u00e9" * 501))
    assert "title" in errors_of(product(title="e\u0301" * 501))  # 501 once composed
    assert "brand" in errors_of(product(brand="b" * 201))


@pytest.mark.parametrize(("body", "field"), [
    (product(title="a\x00b"), "title"),
    (product(title="a\u2028b"), "title"),
    (product(title=""), "title"),
    (product(brand="Acme\x1b[31m"), "brand"),
    (product(description="ok\x07"), "description"),
    (product(category_id=0), "category_id"),
    (product(category_id=True), "category_id"),
    (product(category_id="CAT_x"), "category_id"),
    (product(variants=[{"sku": "A", "price_cents": -5}]), "variants.0.price_cents"),
    (product(variants=[{"sku": "A", "price_cents": 0}]), "variants.0.price_cents"),
    (product(variants=[{"sku": "A", "price_cents": "5"}]), "variants.0.price_cents"),
    (product(variants=[{"sku": "A", "price_cents": 10**13}]), "variants.0.price_cents"),
    (product(variants=[{"sku": "-A", "price_cents": 1}]), "variants.0.sku"),
    (product(variants=[{"sku": "A", "price_cents": 1, "weight_grams": -1}]),
     "variants.0.weight_grams"),
    (product(variants=[{"sku": "A", "price_cents": 1, "attributes": {"color": ""}}]),
     "variants.0.attributes"),
    (product(variants=[{"sku": "A", "price_cents": 1,
                        "attributes": {"color": "Red", " color ": "Blue"}}]),
     "variants.0.attributes"),  # one name twice once trimmed: not one value silently dropped
    (product(variants=[{"sku": "A", "price_cents": 1,
                        "attributes": {"Color": "Red", "color": "Blue"}}]),
     "variants.0.attributes"),  # one name to search and its filters
    (product(variants=[{"sku": "A", "price_cents": 1, "attributes": {"color": ["Red", "red"]}}]),
     "variants.0.attributes"),
    (product(images=[{"url": "ftp://x/y.jpg"}]), "images.0.url"),
    (product(images=[{"url": "//x.example/y.jpg"}]), "images.0.url"),  # another host
    (product(images=[{"url": "/media/a b.jpg"}]), "images.0.url"),
    (product(images=[{"url": "media/y.jpg"}]), "images.0.url"),
    (product(images=[{"url": "https://x/y.jpg", "alt_text": "a\x01"}]), "images.0.alt_text"),
    (product(status="DELETED"), "status"),
])
def test_field_rules(body: dict[str, Any], field: str) -> None:
    assert field in errors_of(body)


def test_a_path_on_the_shop_passes_the_body_rules() -> None:
    """An upload's url (`/media/<sha256>/600.jpg`): whether it is one of this product's
    uploads is the catalog's check on writing (tests/e2e/test_images_api.py)."""
    assert errors_of(product(images=[{"url": "/media/" + "ab" * 32 + "/600.jpg"}])) == {}


def test_cross_field_rules_report_every_bad_field() -> None:
    errs = errors_of(product(
        variants=[{"sku": "A", "price_cents": 500, "compare_price_cents": 400},
                  {"sku": "a", "price_cents": 1}],
        images=[{"url": "https://x/1.jpg", "variant_sku": "B"}],
    ))
    assert errs == {
        "variants.0.compare_price_cents": "must not be below price_cents",
        "variants.1.sku": "duplicate SKU 'a' (also variants.0)",
        "images.0.variant_sku": "names no variant of this product",
    }


def test_limits_come_from_configuration() -> None:
    many = [{"sku": f"S{i}", "price_cents": 1} for i in range(4)]
    assert "variants" in errors_of(product(variants=many))
    imgs = [{"url": f"https://x/{i}.jpg"} for i in range(3)]
    assert "images" in errors_of(product(images=imgs))


@given(st.text(max_size=50))
def test_clean_text_never_lets_a_control_character_through(s: str) -> None:
    try:
        out = clean_text(s)
    except ValueError:
        return
    assert not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in out)
