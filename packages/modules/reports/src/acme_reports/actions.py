"""The reports actions: revenue aggregations over acme-billing's invoices, as JSON or CSV.

They read invoices through ``acme_billing.InvoiceStore`` from a replica of the ``main`` database
(``ctx.db().read()``; the primary when there is none). Void invoices are left out unless
``statuses`` says otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal
from typing import Literal

from acme_billing import Currency, Invoice, InvoiceStore, Status
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from switchyard import Context, action

from acme_reports._aggregate import (
    CurrencyTotal,
    CustomerRank,
    GroupBy,
    RevenueRow,
    currency_totals,
    rank_customers,
    revenue_rows,
)
from acme_reports._csv import Cell, render

Report = Literal["invoices", "revenue_by_month", "revenue_by_customer", "top_customers"]


def _counted() -> list[Status]:
    return ["open", "paid"]


class _Window(BaseModel):
    """Which invoices a report covers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    issued_from: date | None = None
    issued_to: date | None = None
    statuses: list[Status] = Field(default_factory=_counted, min_length=1, max_length=3)

    @field_validator("issued_to")
    @classmethod
    def _after_start(cls, value: date | None, info: ValidationInfo) -> date | None:
        start = info.data.get("issued_from")
        if value is not None and isinstance(start, date) and value < start:
            raise ValueError(f"must not be before issued_from ({start})")
        return value

    @field_validator("statuses")
    @classmethod
    def _distinct(cls, value: list[Status]) -> list[Status]:
        if len(set(value)) != len(value):
            raise ValueError("list each status once")
        return value


class RevenueSummaryIn(_Window):
    group_by: GroupBy = "month"
    currency: Currency | None = None


class RevenueSummary(BaseModel):
    group_by: GroupBy
    rows: list[RevenueRow]
    totals: list[CurrencyTotal] = Field(description="per currency; currencies never mix")


class TopCustomersIn(_Window):
    currency: Currency = Field(description="revenue is ranked within one currency")
    limit: int = Field(10, ge=1, le=100)


class TopCustomers(BaseModel):
    currency: Currency
    customers: list[CustomerRank]


class ExportCsvIn(_Window):
    report: Report
    currency: Currency | None = Field(
        None, validate_default=True, description="required for top_customers"
    )
    delimiter: Literal[",", ";", "\t"] = ","
    limit: int = Field(10, ge=1, le=100, description="top_customers only")

    @field_validator("currency")
    @classmethod
    def _needed_for_ranking(cls, value: Currency | None, info: ValidationInfo) -> Currency | None:
        if value is None and info.data.get("report") == "top_customers":
            raise ValueError("top_customers ranks within one currency: give currency")
        return value


class CsvExport(BaseModel):
    report: Report
    filename: str
    content: str
    row_count: int


class CustomerStatementIn(_Window):
    customer_id: int = Field(ge=1, le=2**62)


class StatementLine(BaseModel):
    number: str
    issued_on: date
    due_on: date
    status: Status
    currency: str
    total: Decimal
    balance_due: Decimal = Field(description="open invoices so far in this currency, running")


class CustomerStatement(BaseModel):
    customer_id: int
    lines: list[StatementLine]
    balance_due: dict[str, Decimal] = Field(description="open amount per currency")


def _invoices(
    store: InvoiceStore,
    window: _Window,
    *,
    customer_id: int | None = None,
    currency: Currency | None = None,
) -> list[Invoice]:
    found = store.find(
        customer_id=customer_id,
        currency=currency,
        issued_from=window.issued_from,
        issued_to=window.issued_to,
    )
    return [invoice for invoice in found if invoice.status in window.statuses]


def _names(store: InvoiceStore) -> Callable[[int], str | None]:
    """Customers' current display names, looked up once each."""
    cache: dict[int, str | None] = {}

    def lookup(user_id: int) -> str | None:
        if user_id not in cache:
            user = store.users.get(user_id)
            cache[user_id] = None if user is None else user.display_name
        return cache[user_id]

    return lookup


@action(
    "reports.revenue_summary",
    description="Revenue by month, customer or currency: counts, subtotal, discount, tax, total.",
)
def revenue_summary(data: RevenueSummaryIn, ctx: Context) -> RevenueSummary:
    with ctx.db().read().connection() as conn:
        store = InvoiceStore(conn)
        invoices = _invoices(store, data, currency=data.currency)
    rows = revenue_rows(invoices, data.group_by)
    return RevenueSummary(group_by=data.group_by, rows=rows, totals=currency_totals(rows))


@action(
    "reports.top_customers",
    description="Customers ranked by revenue in one currency, with their share of the total.",
)
def top_customers(data: TopCustomersIn, ctx: Context) -> TopCustomers:
    with ctx.db().read().connection() as conn:
        store = InvoiceStore(conn)
        invoices = _invoices(store, data, currency=data.currency)
        ranked = rank_customers(invoices, _names(store), data.limit)
    return TopCustomers(currency=data.currency, customers=ranked)


def _csv_table(store: InvoiceStore, data: ExportCsvIn) -> tuple[list[str], list[Sequence[Cell]]]:
    if data.report == "invoices":
        header = [
            "number",
            "issued_on",
            "due_on",
            "status",
            "customer_id",
            "customer_email",
            "currency",
            "subtotal",
            "discount",
            "tax",
            "total",
        ]
        invoices = _invoices(store, data, currency=data.currency)
        return header, [
            [
                i.number,
                i.issued_on.isoformat(),
                i.due_on.isoformat(),
                i.status,
                i.customer_id,
                i.customer_email,
                i.totals.currency,
                i.totals.subtotal,
                i.totals.discount,
                i.totals.tax_total,
                i.totals.total,
            ]
            for i in invoices
        ]
    if data.report == "top_customers":
        assert data.currency is not None  # the input model insists
        invoices = _invoices(store, data, currency=data.currency)
        ranked = rank_customers(invoices, _names(store), data.limit)
        header = [
            "rank",
            "customer_id",
            "email",
            "display_name",
            "invoice_count",
            "currency",
            "total",
            "share_percent",
        ]
        return header, [
            [
                c.rank,
                c.customer_id,
                c.email,
                c.display_name,
                c.invoice_count,
                data.currency,
                c.total,
                c.share_percent,
            ]
            for c in ranked
        ]
    group_by: GroupBy = "month" if data.report == "revenue_by_month" else "customer"
    rows = revenue_rows(_invoices(store, data, currency=data.currency), group_by)
    header = [
        group_by,
        "label",
        "currency",
        "invoice_count",
        "subtotal",
        "discount",
        "tax",
        "total",
    ]
    return header, [
        [r.key, r.label, r.currency, r.invoice_count, r.subtotal, r.discount, r.tax, r.total]
        for r in rows
    ]


@action(
    "reports.export_csv",
    description="Export invoices, revenue by month or customer, or top customers as CSV text.",
)
def export_csv(data: ExportCsvIn, ctx: Context) -> CsvExport:
    with ctx.db().read().connection() as conn:
        store = InvoiceStore(conn)
        header, rows = _csv_table(store, data)
    span = "-".join(d.isoformat() for d in (data.issued_from, data.issued_to) if d is not None)
    suffix = "tsv" if data.delimiter == "\t" else "csv"
    filename = f"{data.report}{'_' + span if span else ''}.{suffix}"
    return CsvExport(
        report=data.report,
        filename=filename,
        content=render(header, rows, delimiter=data.delimiter),
        row_count=len(rows),
    )


@action(
    "reports.customer_statement",
    description="One customer's invoices in date order with the running balance still due.",
)
def customer_statement(data: CustomerStatementIn, ctx: Context) -> CustomerStatement:
    with ctx.db().read().connection() as conn:
        store = InvoiceStore(conn)
        invoices = _invoices(store, data, customer_id=data.customer_id)
    due: dict[str, Decimal] = {}
    lines = []
    for invoice in invoices:
        currency = invoice.totals.currency
        if invoice.status == "open":
            due[currency] = due.get(currency, Decimal(0)) + invoice.totals.total
        lines.append(
            StatementLine(
                number=invoice.number,
                issued_on=invoice.issued_on,
                due_on=invoice.due_on,
                status=invoice.status,
                currency=currency,
                total=invoice.totals.total,
                balance_due=due.get(currency, Decimal(0)),
            )
        )
    return CustomerStatement(customer_id=data.customer_id, lines=lines, balance_due=due)
