"""Invoice data: line items, discounts, computed totals and stored invoices."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Currency = Literal["USD", "EUR", "GBP", "JPY", "CHF", "KWD"]
Status = Literal["open", "paid", "void"]


class LineItem(BaseModel):
    """One billed item: quantity times unit price, taxed at ``tax_rate`` percent."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = Field(min_length=1, max_length=200)
    quantity: Decimal = Field(gt=0, le=1_000_000, max_digits=12, decimal_places=3)
    unit_price: Decimal = Field(ge=0, le=1_000_000_000, max_digits=16, decimal_places=4)
    tax_rate: Decimal = Field(
        Decimal(0), ge=0, le=100, max_digits=6, decimal_places=3, description="percent"
    )


class PercentDiscount(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["percent"]
    value: Decimal = Field(gt=0, le=100, max_digits=6, decimal_places=3)


class AmountDiscount(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["amount"]
    value: Decimal = Field(gt=0, le=1_000_000_000, max_digits=16, decimal_places=3)


Discount = Annotated[PercentDiscount | AmountDiscount, Field(discriminator="kind")]


class PricedLine(BaseModel):
    description: str
    quantity: Decimal
    unit_price: Decimal
    tax_rate: Decimal
    amount: Decimal = Field(description="quantity x unit price, rounded to the currency")
    discount: Decimal = Field(description="this line's share of the invoice discount")
    net: Decimal = Field(description="amount - discount: the taxable base")


class TaxLine(BaseModel):
    rate: Decimal
    base: Decimal
    amount: Decimal


class Totals(BaseModel):
    currency: Currency
    rounding: str = Field(description="the currency's rounding mode, e.g. ROUND_HALF_EVEN")
    lines: list[PricedLine]
    subtotal: Decimal
    discount: Decimal
    taxes: list[TaxLine]
    tax_total: Decimal
    rounding_adjustment: Decimal = Field(description="cash rounding of the total (CHF: 0.05)")
    total: Decimal


class Invoice(BaseModel):
    id: int
    number: str
    customer_id: int
    customer_email: str
    status: Status
    issued_on: date
    due_on: date
    discount: Discount | None
    totals: Totals
    created_at: datetime
    updated_at: datetime
