from __future__ import annotations

from datetime import date
from decimal import Decimal

import acme_billing
import acme_users
import psycopg
import pytest
from switchyard import HandlerError, InvalidInputError, Registry, call_action
from switchyard.testing import make_registry, use_cache, use_registry
from switchyard_db.testing import fresh_database, temporary_server


@pytest.fixture(scope="module")
def pg(tmp_path_factory):
    with temporary_server(tmp_path_factory.mktemp("pg")) as server:
        yield server


@pytest.fixture(autouse=True)
def registry():
    reg = make_registry(*acme_billing.ACTIONS, *acme_users.ACTIONS)
    with use_registry(reg), use_cache():
        yield reg


@pytest.fixture
def db(pg):
    with fresh_database(pg) as settings:
        yield settings


@pytest.fixture
def customer(db):
    return call_action("users.create_user", {"email": "ada@example.com", "display_name": "Ada"})


def totals(currency, items, discount=None):
    data = {"currency": currency, "items": items}
    if discount is not None:
        data["discount"] = discount
    return call_action("billing.compute_totals", data)


def item(price, quantity="1", tax="0", description="thing"):
    return {"description": description, "quantity": quantity, "unit_price": price, "tax_rate": tax}


def fields(exc):
    return [error.loc for error in exc.value.errors]


# --- pricing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("currency", "price", "expected"),
    [
        ("USD", "0.125", "0.13"),  # half up
        ("EUR", "0.125", "0.12"),  # half even: to the even cent
        ("EUR", "0.135", "0.14"),
        ("JPY", "333.5", "334"),  # no minor unit
        ("KWD", "1.2345", "1.235"),  # three decimals
    ],
)
def test_line_amounts_round_by_currency_policy(currency, price, expected):
    out = totals(currency, [item(price)])
    assert out.lines[0].amount == Decimal(expected)
    assert str(out.total) == expected


def test_discount_is_allocated_over_lines_before_tax_per_rate():
    out = totals(
        "EUR",
        [item("19.99", quantity="3", tax="20"), item("10.00", tax="5.5")],
        {"kind": "percent", "value": "10"},
    )
    assert out.subtotal == Decimal("69.97")
    assert out.discount == Decimal("7.00")  # 6.997 rounded
    assert [(line.discount, line.net) for line in out.lines] == [
        (Decimal("6.00"), Decimal("53.97")),
        (Decimal("1.00"), Decimal("9.00")),
    ]
    assert [(t.rate, t.base, t.amount) for t in out.taxes] == [
        (Decimal("5.5"), Decimal("9.00"), Decimal("0.50")),
        (Decimal("20"), Decimal("53.97"), Decimal("10.79")),
    ]
    assert (out.tax_total, out.total) == (Decimal("11.29"), Decimal("74.26"))


def test_tax_is_computed_once_per_rate_not_per_line():
    # three lines of 0.10 at 5%: per line 0.005 would round to 0.01 each (0.03); per rate, 0.02
    out = totals("USD", [item("0.10", tax="5")] * 3)
    assert [t.amount for t in out.taxes] == [Decimal("0.02")]


def test_amount_discount_shares_add_up_exactly():
    out = totals("USD", [item("1.00")] * 3, {"kind": "amount", "value": "0.10"})
    assert [line.discount for line in out.lines] == [
        Decimal("0.04"),
        Decimal("0.03"),
        Decimal("0.03"),
    ]
    assert out.total == Decimal("2.90")


def test_chf_totals_are_cash_rounded_to_five_rappen():
    up = totals("CHF", [item("10.03")])
    down = totals("CHF", [item("10.02")])
    assert (up.total, up.rounding_adjustment) == (Decimal("10.05"), Decimal("0.02"))
    assert (down.total, down.rounding_adjustment) == (Decimal("10.00"), Decimal("-0.02"))


def test_jpy_tax_rounds_to_whole_yen():
    out = totals("JPY", [item("333.5", quantity="3", tax="10")])
    assert (out.subtotal, out.tax_total, out.total) == (
        Decimal("1001"),
        Decimal("100"),
        Decimal("1101"),
    )


def test_discount_larger_than_subtotal_is_refused():
    with pytest.raises(HandlerError) as exc:
        totals("USD", [item("5.00")], {"kind": "amount", "value": "6"})
    assert exc.value.error_type == "DiscountTooLargeError"
    assert "larger than the subtotal 5.00 USD" in str(exc.value)


def test_amounts_serialize_as_strings_not_floats():
    out = totals("USD", [item("0.10", quantity="3")])
    assert '"total":"0.30"' in out.model_dump_json()


# --- invoices --------------------------------------------------------------------------


def create(db, customer_id, **extra):
    data = {
        "customer_id": customer_id,
        "currency": "USD",
        "items": [item("100.00", tax="8.25")],
        "issued_on": "2026-03-15",
        **extra,
    }
    return call_action("billing.create_invoice", data)


def test_create_invoice_for_a_user_freezes_totals(db, customer):
    invoice = create(db, customer.id, due_days=14)
    assert invoice.number == f"INV-{invoice.id:06d}"
    assert (invoice.customer_email, invoice.status) == ("ada@example.com", "open")
    assert (invoice.issued_on, invoice.due_on) == (date(2026, 3, 15), date(2026, 3, 29))
    assert invoice.totals.total == Decimal("108.25")
    again = call_action("billing.get_invoice", {"invoice_id": invoice.id})
    assert again == invoice


def test_invoice_for_an_unknown_user_is_refused(db):
    with pytest.raises(HandlerError) as exc:
        create(db, 42)
    assert exc.value.error_type == "UserNotFoundError"


def test_apply_discount_recomputes_from_stored_items(db, customer):
    invoice = create(db, customer.id)
    out = call_action(
        "billing.apply_discount",
        {"invoice_id": invoice.id, "discount": {"kind": "percent", "value": "25"}},
    )
    assert out.discount is not None
    assert out.discount.kind == "percent"
    assert (out.totals.discount, out.totals.tax_total, out.totals.total) == (
        Decimal("25.00"),
        Decimal("6.19"),
        Decimal("81.19"),
    )
    assert out.updated_at > invoice.updated_at


def test_apply_discount_to_a_paid_invoice_is_refused(db, customer):
    invoice = create(db, customer.id)
    with psycopg.connect(db.url) as conn:
        acme_billing.InvoiceStore(conn).set_status(invoice.id, "paid")
    with pytest.raises(HandlerError) as exc:
        call_action(
            "billing.apply_discount",
            {"invoice_id": invoice.id, "discount": {"kind": "amount", "value": "1"}},
        )
    assert exc.value.error_type == "InvoiceNotOpenError"


def test_list_invoices_filters_by_customer_and_dates(db, customer):
    bob = call_action("users.create_user", {"email": "bob@example.com", "display_name": "Bob"})
    create(db, customer.id, issued_on="2026-01-10")
    create(db, bob.id, issued_on="2026-02-10")
    create(db, customer.id, issued_on="2026-03-10", currency="EUR")
    everything = call_action("billing.list_invoices", {})
    assert [i.issued_on.month for i in everything.invoices] == [1, 2, 3]
    adas = call_action("billing.list_invoices", {"customer_id": customer.id})
    assert [i.customer_email for i in adas.invoices] == ["ada@example.com"] * 2
    feb_mar = call_action(
        "billing.list_invoices",
        {"issued_from": "2026-02-01", "issued_to": "2026-03-10", "currency": "EUR"},
    )
    assert feb_mar.count == 1
    assert feb_mar.invoices[0].totals.currency == "EUR"


def test_missing_invoice_is_not_found(db, customer):
    with pytest.raises(HandlerError) as exc:
        call_action("billing.get_invoice", {"invoice_id": 7})
    assert exc.value.error_type == "InvoiceNotFoundError"


def test_users_and_billing_migrations_share_one_ledger(db, customer):
    create(db, customer.id)
    with psycopg.connect(db.url) as conn:
        rows = conn.execute(
            "SELECT component, version FROM switchyard_migrations"
            " WHERE component IN ('users', 'billing') ORDER BY applied_at, version"
        ).fetchall()
    # users first: billing's invoices reference users (the distributions' dependency order)
    assert rows == [("users", 1), ("users", 2), ("users", 3), ("billing", 1), ("billing", 2)]


# --- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"currency": "XYZ", "items": [item("1")]}, "currency"),
        ({"currency": "USD", "items": []}, "items"),
        ({"currency": "USD", "items": [item("1", quantity="0")]}, "items.0.quantity"),
        ({"currency": "USD", "items": [item("1.00001")]}, "items.0.unit_price"),
        ({"currency": "USD", "items": [item("-1")]}, "items.0.unit_price"),
        ({"currency": "USD", "items": [item("1", tax="101")]}, "items.0.tax_rate"),
        ({"currency": "USD", "items": [{**item("1"), "sku": "x"}]}, "items.0.sku"),
        (
            {
                "currency": "USD",
                "items": [item("1")],
                "discount": {"kind": "percent", "value": 150},
            },
            "discount.percent.value",
        ),
        (
            {"currency": "USD", "items": [item("1")], "discount": {"kind": "coupon", "value": 1}},
            "discount",
        ),
    ],
)
def test_compute_totals_bad_input_names_the_field(data, field):
    with pytest.raises(InvalidInputError) as exc:
        call_action("billing.compute_totals", data)
    assert fields(exc) == [field]


def test_list_invoices_rejects_an_inverted_date_range(db):
    with pytest.raises(InvalidInputError) as exc:
        call_action(
            "billing.list_invoices",
            {"issued_from": "2026-02-01", "issued_to": "2026-01-01"},
        )
    assert fields(exc) == ["issued_to"]


def test_create_invoice_bad_input_names_the_field(db):
    with pytest.raises(InvalidInputError) as exc:
        call_action(
            "billing.create_invoice",
            {
                "customer_id": 1,
                "currency": "USD",
                "items": [item("1")],
                "due_days": 400,
            },
        )
    assert fields(exc) == ["due_days"]


def test_every_entry_point_resolves_to_the_action_it_names():
    installed = Registry.from_entry_points()
    ours = sorted(action.name for action in acme_billing.ACTIONS)
    assert [name for name in installed.names() if name.startswith("billing.")] == ours
    for name in ours:
        assert installed.info(name).distribution == "acme-billing"
        assert installed.resolve(name).name == name


def test_a_queued_call_round_trips_through_json():
    data = {
        "currency": "CHF",
        "items": [item("10.03", quantity="1.5", tax="7.7")],
        "discount": {"kind": "amount", "value": "0.50"},
    }
    queued = acme_billing.ComputeTotalsIn.model_validate(data).model_dump_json()
    assert call_action("billing.compute_totals", queued) == call_action(
        "billing.compute_totals", data
    )


def test_no_discount_still_has_the_currency_scale():
    assert str(totals("KWD", [item("1")]).discount) == "0.000"
