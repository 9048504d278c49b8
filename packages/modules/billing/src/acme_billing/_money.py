"""Money arithmetic: currency policies, rounding, discount allocation and taxes, in Decimal."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Final

from acme_billing._models import (
    AmountDiscount,
    Currency,
    LineItem,
    PercentDiscount,
    PricedLine,
    TaxLine,
    Totals,
)

HUNDRED: Final = Decimal(100)


@dataclass(frozen=True, slots=True)
class CurrencyPolicy:
    """How a currency rounds: its minor unit, the rounding mode, and cash rounding if any."""

    exponent: int
    rounding: str
    cash_increment: Decimal | None = None

    @property
    def unit(self) -> Decimal:
        return Decimal(1).scaleb(-self.exponent)

    def round(self, value: Decimal) -> Decimal:
        return value.quantize(self.unit, rounding=self.rounding)


# Banker's rounding (half-even) where the accounting convention uses it, half-up elsewhere;
# the Swiss franc's totals are cash-rounded to 0.05.
POLICIES: Final[dict[str, CurrencyPolicy]] = {
    "USD": CurrencyPolicy(2, ROUND_HALF_UP),
    "EUR": CurrencyPolicy(2, ROUND_HALF_EVEN),
    "GBP": CurrencyPolicy(2, ROUND_HALF_EVEN),
    "JPY": CurrencyPolicy(0, ROUND_HALF_UP),
    "CHF": CurrencyPolicy(2, ROUND_HALF_UP, cash_increment=Decimal("0.05")),
    "KWD": CurrencyPolicy(3, ROUND_HALF_UP),
}


class DiscountTooLargeError(ValueError):
    def __init__(self, discount: Decimal, subtotal: Decimal, currency: str) -> None:
        super().__init__(
            f"discount {discount} {currency} is larger than the subtotal {subtotal} {currency}"
        )


def _allocate(total: Decimal, weights: Sequence[Decimal], unit: Decimal) -> list[Decimal]:
    """Split ``total`` over ``weights`` in whole minor units, exactly (largest remainder)."""
    whole = sum(weights, Decimal(0))
    if whole == 0:
        return [Decimal(0) for _ in weights]
    units = int(total / unit)
    raw = [Decimal(units) * weight / whole for weight in weights]
    shares = [int(r.to_integral_value(rounding=ROUND_DOWN)) for r in raw]
    leftover = units - sum(shares)
    by_remainder = sorted(range(len(raw)), key=lambda i: (-(raw[i] - shares[i]), i))
    for i in by_remainder[:leftover]:
        shares[i] += 1
    return [Decimal(share) * unit for share in shares]


def compute_totals(
    currency: Currency,
    items: Sequence[LineItem],
    discount: PercentDiscount | AmountDiscount | None = None,
) -> Totals:
    """Price the lines, apply the discount across them, tax each rate group, round the total.

    Line amounts round to the currency's minor unit; the discount is allocated over the lines in
    proportion to their amounts (so the taxable bases carry it); tax is computed once per rate
    on the summed base; cash-rounding currencies round the final total to their increment.
    """
    policy = POLICIES[currency]
    amounts = [policy.round(item.quantity * item.unit_price) for item in items]
    subtotal = sum(amounts, Decimal(0))
    if discount is None:
        off = policy.round(Decimal(0))
    elif isinstance(discount, PercentDiscount):
        off = policy.round(subtotal * discount.value / HUNDRED)
    else:
        off = policy.round(discount.value)
    if off > subtotal:
        raise DiscountTooLargeError(off, subtotal, currency)
    shares = _allocate(off, amounts, policy.unit)
    lines = [
        PricedLine(
            description=item.description,
            quantity=item.quantity,
            unit_price=item.unit_price,
            tax_rate=item.tax_rate,
            amount=amount,
            discount=share,
            net=amount - share,
        )
        for item, amount, share in zip(items, amounts, shares, strict=True)
    ]
    bases: dict[Decimal, Decimal] = {}
    for line in lines:
        rate = line.tax_rate.normalize()
        bases[rate] = bases.get(rate, Decimal(0)) + line.net
    taxes = [
        TaxLine(rate=rate, base=base, amount=policy.round(base * rate / HUNDRED))
        for rate, base in sorted(bases.items())
    ]
    tax_total = sum((tax.amount for tax in taxes), Decimal(0))
    exact = subtotal - off + tax_total
    total = exact
    if policy.cash_increment is not None:
        steps = (exact / policy.cash_increment).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        total = policy.round(steps * policy.cash_increment)
    return Totals(
        currency=currency,
        rounding=policy.rounding,
        lines=lines,
        subtotal=subtotal,
        discount=off,
        taxes=taxes,
        tax_total=tax_total,
        rounding_adjustment=total - exact,
        total=total,
    )
