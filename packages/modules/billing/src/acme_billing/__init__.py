"""acme-billing: Decimal invoices with taxes, discounts and per-currency rounding.

Depends on acme-users: invoices bill existing users and live in the same database.
``InvoiceStore`` and ``compute_totals`` are the Python API that acme-reports builds on.
"""

from __future__ import annotations

from acme_billing._models import (
    AmountDiscount,
    Currency,
    Discount,
    Invoice,
    LineItem,
    PercentDiscount,
    PricedLine,
    Status,
    TaxLine,
    Totals,
)
from acme_billing._money import POLICIES, CurrencyPolicy, DiscountTooLargeError
from acme_billing._money import compute_totals as price
from acme_billing._store import (
    InvoiceNotFoundError,
    InvoiceNotOpenError,
    InvoiceStore,
)
from acme_billing.actions import (
    ApplyDiscountIn,
    ComputeTotalsIn,
    CreateInvoiceIn,
    GetInvoiceIn,
    InvoiceList,
    ListInvoicesIn,
    apply_discount,
    compute_totals,
    create_invoice,
    get_invoice,
    list_invoices,
)

ACTIONS = (compute_totals, create_invoice, apply_discount, get_invoice, list_invoices)

__all__ = [
    "ACTIONS",
    "POLICIES",
    "AmountDiscount",
    "ApplyDiscountIn",
    "ComputeTotalsIn",
    "CreateInvoiceIn",
    "Currency",
    "CurrencyPolicy",
    "Discount",
    "DiscountTooLargeError",
    "GetInvoiceIn",
    "Invoice",
    "InvoiceList",
    "InvoiceNotFoundError",
    "InvoiceNotOpenError",
    "InvoiceStore",
    "LineItem",
    "ListInvoicesIn",
    "PercentDiscount",
    "PricedLine",
    "Status",
    "TaxLine",
    "Totals",
    "apply_discount",
    "compute_totals",
    "create_invoice",
    "get_invoice",
    "list_invoices",
    "price",
]
