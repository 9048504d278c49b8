"""Aggregations over billing's invoices, in Decimal, never mixing currencies."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Literal

from acme_billing import Invoice
from pydantic import BaseModel, Field

GroupBy = Literal["month", "customer", "currency"]


class RevenueRow(BaseModel):
    key: str = Field(description="'2026-03' by month, the customer id, or the currency")
    label: str = Field(description="human-readable key: the month, customer email or currency")
    currency: str
    invoice_count: int
    subtotal: Decimal
    discount: Decimal
    tax: Decimal
    total: Decimal


class CurrencyTotal(BaseModel):
    currency: str
    invoice_count: int
    total: Decimal


class CustomerRank(BaseModel):
    rank: int
    customer_id: int
    email: str
    display_name: str | None = Field(description="None when the user no longer exists")
    invoice_count: int
    total: Decimal
    share_percent: Decimal = Field(description="of the period's revenue in this currency")


def _key(invoice: Invoice, group_by: GroupBy) -> tuple[str, str]:
    if group_by == "month":
        month = invoice.issued_on.strftime("%Y-%m")
        return month, month
    if group_by == "customer":
        return str(invoice.customer_id), invoice.customer_email
    return invoice.totals.currency, invoice.totals.currency


def revenue_rows(invoices: Iterable[Invoice], group_by: GroupBy) -> list[RevenueRow]:
    """One row per (group, currency), sorted by group key then currency."""
    rows: dict[tuple[str, str], RevenueRow] = {}
    for invoice in invoices:
        key, label = _key(invoice, group_by)
        t = invoice.totals
        row = rows.get((key, t.currency))
        if row is None:
            row = rows[(key, t.currency)] = RevenueRow(
                key=key,
                label=label,
                currency=t.currency,
                invoice_count=0,
                subtotal=Decimal(0),
                discount=Decimal(0),
                tax=Decimal(0),
                total=Decimal(0),
            )
        row.invoice_count += 1
        row.subtotal += t.subtotal
        row.discount += t.discount
        row.tax += t.tax_total
        row.total += t.total
    order: Callable[[tuple[str, str]], tuple[int, str, str]] = (
        (lambda k: (int(k[0]), "", k[1])) if group_by == "customer" else (lambda k: (0, *k))
    )
    return [rows[k] for k in sorted(rows, key=order)]


def currency_totals(rows: Iterable[RevenueRow]) -> list[CurrencyTotal]:
    sums: dict[str, CurrencyTotal] = {}
    for row in rows:
        entry = sums.setdefault(
            row.currency, CurrencyTotal(currency=row.currency, invoice_count=0, total=Decimal(0))
        )
        entry.invoice_count += row.invoice_count
        entry.total += row.total
    return [sums[c] for c in sorted(sums)]


def rank_customers(
    invoices: Iterable[Invoice], names: Callable[[int], str | None], limit: int
) -> list[CustomerRank]:
    """Customers by revenue, highest first (ties: lower id first); one currency expected."""
    rows = revenue_rows(invoices, "customer")
    whole = sum((row.total for row in rows), Decimal(0))
    ranked = sorted(rows, key=lambda row: (-row.total, int(row.key)))[:limit]
    return [
        CustomerRank(
            rank=position,
            customer_id=int(row.key),
            email=row.label,
            display_name=names(int(row.key)),
            invoice_count=row.invoice_count,
            total=row.total,
            share_percent=(
                Decimal(0)
                if whole == 0
                else (row.total * 100 / whole).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
            ),
        )
        for position, row in enumerate(ranked, start=1)
    ]
