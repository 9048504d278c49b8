"""The billing actions: Decimal invoices with line items, taxes, discounts, rounding rules.

Invoices live in the ``main`` database beside the users they bill (``ctx.db()``; see
acme-users); inputs carry data only. Nothing is opened at import time.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from switchyard import Context, action

from acme_billing._models import Currency, Discount, Invoice, LineItem, Status, Totals
from acme_billing._money import compute_totals as _compute_totals
from acme_billing._store import InvoiceStore

Items = Annotated[list[LineItem], Field(min_length=1, max_length=200)]
Id = Annotated[int, Field(ge=1, le=2**62)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Stored(_Input):
    pass


class ComputeTotalsIn(_Input):
    currency: Currency
    items: Items
    discount: Discount | None = None


class CreateInvoiceIn(_Stored):
    customer_id: Id
    currency: Currency
    items: Items
    discount: Discount | None = None
    issued_on: date | None = Field(None, description="default: today (UTC)")
    due_days: int = Field(30, ge=0, le=365)


class ApplyDiscountIn(_Stored):
    invoice_id: Id
    discount: Discount


class GetInvoiceIn(_Stored):
    invoice_id: Id


class ListInvoicesIn(_Stored):
    customer_id: Id | None = None
    currency: Currency | None = None
    status: Status | None = None
    issued_from: date | None = None
    issued_to: date | None = None
    limit: int = Field(100, ge=1, le=1000)

    @field_validator("issued_to")
    @classmethod
    def _after_start(cls, value: date | None, info: ValidationInfo) -> date | None:
        start = info.data.get("issued_from")
        if value is not None and isinstance(start, date) and value < start:
            raise ValueError(f"must not be before issued_from ({start})")
        return value


class InvoiceList(BaseModel):
    invoices: list[Invoice]
    count: int


@action(
    "billing.compute_totals",
    description="Price line items: rounding per currency, discount allocation, taxes per rate.",
)
def compute_totals(data: ComputeTotalsIn) -> Totals:
    return _compute_totals(data.currency, data.items, data.discount)


@action(
    "billing.create_invoice",
    description="Create an open invoice for an existing user, with computed, frozen totals.",
    idempotent=False,
)
def create_invoice(data: CreateInvoiceIn, ctx: Context) -> Invoice:
    with ctx.db().connection() as conn:
        return InvoiceStore(conn).create(
            customer_id=data.customer_id,
            currency=data.currency,
            items=data.items,
            discount=data.discount,
            issued_on=data.issued_on or datetime.now(UTC).date(),
            due_days=data.due_days,
        )


@action(
    "billing.apply_discount",
    description="Set an open invoice's discount (percent or amount) and recompute its totals.",
)
def apply_discount(data: ApplyDiscountIn, ctx: Context) -> Invoice:
    with ctx.db().connection() as conn:
        return InvoiceStore(conn).apply_discount(data.invoice_id, data.discount)


@action("billing.get_invoice", description="Fetch one invoice by id.")
def get_invoice(data: GetInvoiceIn, ctx: Context) -> Invoice:
    with ctx.db().read(own_writes=True).connection() as conn:
        return InvoiceStore(conn).require(data.invoice_id)


@action(
    "billing.list_invoices",
    description="Invoices by customer, currency, status and issue-date range (inclusive).",
)
def list_invoices(data: ListInvoicesIn, ctx: Context) -> InvoiceList:
    with ctx.db().read(own_writes=True).connection() as conn:
        invoices = InvoiceStore(conn).find(
            customer_id=data.customer_id,
            currency=data.currency,
            status=data.status,
            issued_from=data.issued_from,
            issued_to=data.issued_to,
            limit=data.limit,
        )
    return InvoiceList(invoices=invoices, count=len(invoices))
