from __future__ import annotations

import csv
import io
from decimal import Decimal

import acme_billing
import acme_reports
import acme_users
import psycopg
import pytest
from switchyard import InvalidInputError, Registry, call_action
from switchyard.testing import make_registry, use_cache, use_registry
from switchyard_db.testing import fresh_database, temporary_server


@pytest.fixture(scope="module")
def pg(tmp_path_factory):
    with temporary_server(tmp_path_factory.mktemp("pg")) as server:
        yield server


@pytest.fixture(autouse=True)
def registry():
    reg = make_registry(*acme_reports.ACTIONS, *acme_billing.ACTIONS, *acme_users.ACTIONS)
    with use_registry(reg), use_cache():
        yield reg


@pytest.fixture
def db(pg):
    with fresh_database(pg) as settings:
        yield settings


def user(db, email, name):
    return call_action("users.create_user", {"email": email, "display_name": name})


def invoice(db, customer, amount, issued_on, currency="USD"):
    return call_action(
        "billing.create_invoice",
        {
            "customer_id": customer.id,
            "currency": currency,
            "items": [{"description": "service", "quantity": "1", "unit_price": amount}],
            "issued_on": issued_on,
        },
    )


@pytest.fixture
def seeded(db):
    ada = user(db, "ada@example.com", "Ada")
    bob = user(db, "bob@example.com", "Bob")
    paid = invoice(db, ada, "100.00", "2026-01-20")
    invoice(db, ada, "50.00", "2026-02-03")
    invoice(db, bob, "300.00", "2026-02-14")
    invoice(db, bob, "80.00", "2026-02-15", currency="EUR")
    void = invoice(db, ada, "1000.00", "2026-03-01")
    with psycopg.connect(db.url) as conn:
        store = acme_billing.InvoiceStore(conn)
        store.set_status(paid.id, "paid")
        store.set_status(void.id, "void")
    return {"ada": ada, "bob": bob}


def summary(db, **extra):
    return call_action("reports.revenue_summary", {**extra})


def test_revenue_by_month_keeps_currencies_apart_and_skips_void(db, seeded):
    out = summary(db, group_by="month")
    assert [(r.key, r.currency, r.invoice_count, r.total) for r in out.rows] == [
        ("2026-01", "USD", 1, Decimal("100.00")),
        ("2026-02", "EUR", 1, Decimal("80.00")),
        ("2026-02", "USD", 2, Decimal("350.00")),
    ]
    assert [(t.currency, t.invoice_count, t.total) for t in out.totals] == [
        ("EUR", 1, Decimal("80.00")),
        ("USD", 3, Decimal("450.00")),
    ]


def test_void_invoices_count_when_asked_for(db, seeded):
    out = summary(db, group_by="currency", statuses=["open", "paid", "void"], currency="USD")
    assert [(r.key, r.invoice_count, r.total) for r in out.rows] == [("USD", 4, Decimal("1450.00"))]


def test_revenue_by_customer_within_a_date_window(db, seeded):
    out = summary(db, group_by="customer", issued_from="2026-02-01", issued_to="2026-02-14")
    assert [(r.label, r.total) for r in out.rows] == [
        ("ada@example.com", Decimal("50.00")),
        ("bob@example.com", Decimal("300.00")),
    ]


def test_top_customers_ranks_by_revenue_with_shares(db, seeded):
    out = call_action("reports.top_customers", {"currency": "USD"})
    assert [(c.rank, c.display_name, c.total, c.share_percent) for c in out.customers] == [
        (1, "Bob", Decimal("300.00"), Decimal("66.67")),
        (2, "Ada", Decimal("150.00"), Decimal("33.33")),
    ]
    only_one = call_action("reports.top_customers", {"currency": "USD", "limit": 1})
    assert [c.email for c in only_one.customers] == ["bob@example.com"]


def test_export_csv_of_invoices_parses_back(db, seeded):
    out = call_action("reports.export_csv", {"report": "invoices"})
    rows = list(csv.DictReader(io.StringIO(out.content)))
    assert out.row_count == len(rows) == 4
    assert out.filename == "invoices.csv"
    assert [(r["customer_email"], r["currency"], r["total"]) for r in rows] == [
        ("ada@example.com", "USD", "100.00"),
        ("ada@example.com", "USD", "50.00"),
        ("bob@example.com", "USD", "300.00"),
        ("bob@example.com", "EUR", "80.00"),
    ]


def test_export_csv_top_customers_with_semicolons(db, seeded):
    out = call_action(
        "reports.export_csv",
        {
            "report": "top_customers",
            "currency": "USD",
            "delimiter": ";",
            "issued_from": "2026-01-01",
            "issued_to": "2026-12-31",
        },
    )
    assert out.filename == "top_customers_2026-01-01-2026-12-31.csv"
    assert out.content.splitlines()[:2] == [
        "rank;customer_id;email;display_name;invoice_count;currency;total;share_percent",
        f"1;{seeded['bob'].id};bob@example.com;Bob;1;USD;300.00;66.67",
    ]


def test_export_csv_defuses_spreadsheet_formulas(db):
    evil = user(db, "=cmd@example.com", "Eve")
    invoice(db, evil, "1.00", "2026-01-01")
    out = call_action("reports.export_csv", {"report": "revenue_by_customer"})
    row = next(csv.DictReader(io.StringIO(out.content)))
    assert row["label"] == "'=cmd@example.com"


def test_customer_statement_runs_the_balance_due(db, seeded):
    out = call_action("reports.customer_statement", {"customer_id": seeded["ada"].id})
    assert [(line.status, line.total, line.balance_due) for line in out.lines] == [
        ("paid", Decimal("100.00"), Decimal("0")),
        ("open", Decimal("50.00"), Decimal("50.00")),
    ]
    assert out.balance_due == {"USD": Decimal("50.00")}


def test_reports_on_an_empty_database_are_empty(db):
    assert summary(db).rows == []
    assert call_action("reports.top_customers", {"currency": "EUR"}).customers == []


@pytest.mark.parametrize(
    ("action", "data", "field"),
    [
        ("reports.revenue_summary", {"group_by": "week"}, "group_by"),
        ("reports.revenue_summary", {"statuses": []}, "statuses"),
        ("reports.revenue_summary", {"statuses": ["open", "open"]}, "statuses"),
        (
            "reports.revenue_summary",
            {"issued_from": "2026-02-01", "issued_to": "2026-01-01"},
            "issued_to",
        ),
        ("reports.top_customers", {}, "currency"),
        ("reports.top_customers", {"currency": "USD", "limit": 0}, "limit"),
        ("reports.export_csv", {"report": "everything"}, "report"),
        ("reports.export_csv", {"report": "top_customers"}, "currency"),
        ("reports.export_csv", {"report": "invoices", "delimiter": "|"}, "delimiter"),
        ("reports.customer_statement", {"customer_id": -1}, "customer_id"),
    ],
)
def test_bad_input_names_the_field(db, action, data, field):
    with pytest.raises(InvalidInputError) as exc:
        call_action(action, {**data})
    assert [error.loc for error in exc.value.errors] == [field]


def test_every_entry_point_resolves_to_the_action_it_names():
    installed = Registry.from_entry_points()
    ours = sorted(action.name for action in acme_reports.ACTIONS)
    assert [name for name in installed.names() if name.startswith("reports.")] == ours
    for name in ours:
        assert installed.info(name).distribution == "acme-reports"
        assert installed.resolve(name).name == name


def test_a_queued_call_round_trips_through_json(db, seeded):
    data = {"report": "revenue_by_month", "issued_from": "2026-02-01"}
    queued = acme_reports.ExportCsvIn.model_validate(data).model_dump_json()
    assert call_action("reports.export_csv", queued) == call_action("reports.export_csv", data)
