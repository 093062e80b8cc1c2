"""Items of a reservation or a quote: one per variant (and warehouse)."""

from __future__ import annotations

from serve.inventory_models import QuoteIn, ReservationIn


def test_a_repeated_item_is_named_and_other_warehouses_are_not_repeats() -> None:
    cart = ReservationIn.model_validate({"items": [
        {"variant_id": 7, "quantity": 1, "warehouse_id": "WH_01"},
        {"variant_id": 7, "quantity": 2, "warehouse_id": "WH_02"},  # another warehouse: fine
        {"variant_id": 8, "quantity": 1},
        {"variant_id": 7, "quantity": 1, "warehouse_id": "WH_01"},
        {"variant_id": 8, "quantity": 3}]})
    assert set(cart.problems()) == {"items.3.variant_id", "items.4.variant_id"}
    assert "repeats items.0" in cart.problems()["items.3.variant_id"]
    assert "repeats items.2" in cart.problems()["items.4.variant_id"]
    quote = QuoteIn.model_validate({"items": [{"variant_id": 7, "quantity": 1},
                                              {"variant_id": 9, "quantity": 1},
                                              {"variant_id": 7, "quantity": 2}]})
    assert list(quote.problems()) == ["items.2.variant_id"]
    assert QuoteIn.model_validate({"items": [{"variant_id": 7, "quantity": 1}]}).problems() == {}
