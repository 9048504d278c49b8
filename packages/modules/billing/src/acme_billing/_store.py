"""Invoices stored beside the users they bill, in the ``main`` database (see acme_users)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import psycopg
from acme_users import UserStore
from psycopg.rows import dict_row
from pydantic import TypeAdapter

from acme_billing._models import (
    AmountDiscount,
    Currency,
    Discount,
    Invoice,
    LineItem,
    PercentDiscount,
    Status,
    Totals,
)
from acme_billing._money import compute_totals

_ITEMS: Final = TypeAdapter(list[LineItem])
_DISCOUNT: Final[TypeAdapter[PercentDiscount | AmountDiscount]] = TypeAdapter(Discount)
_COLUMNS: Final = (
    "id, customer_id, customer_email, currency, status, issued_on, due_on, discount_json,"
    " totals_json, created_at, updated_at"
)


class InvoiceNotFoundError(LookupError):
    def __init__(self, invoice_id: int) -> None:
        super().__init__(f"no invoice with id {invoice_id}")
        self.invoice_id = invoice_id


class InvoiceNotOpenError(ValueError):
    def __init__(self, invoice_id: int, status: str) -> None:
        super().__init__(f"invoice {invoice_id} is {status}; only open invoices can change")


def invoice_number(invoice_id: int) -> str:
    return f"INV-{invoice_id:06d}"


def _now() -> datetime:
    return datetime.now(UTC)


def _invoice(row: dict[str, Any]) -> Invoice:
    discount = row["discount_json"]
    return Invoice(
        id=row["id"],
        number=invoice_number(row["id"]),
        customer_id=row["customer_id"],
        customer_email=row["customer_email"],
        status=row["status"],
        issued_on=row["issued_on"],
        due_on=row["due_on"],
        discount=None if discount is None else _DISCOUNT.validate_python(discount),
        totals=Totals.model_validate(row["totals_json"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _json(text: str) -> psycopg.types.json.Jsonb:
    from psycopg.types.json import Jsonb

    return Jsonb(json.loads(text))


class InvoiceStore:
    """Invoices over one connection (a transaction of ``ctx.db("main").connection()``).

    Totals are computed when an invoice is created or changed and stored frozen, so a later
    change of rounding policy never rewrites an issued invoice.
    """

    __slots__ = ("_conn", "_users")

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn
        self._users = UserStore(conn)

    @property
    def users(self) -> UserStore:
        return self._users

    def _rows(self, query: Any, params: Sequence[Any]) -> list[dict[str, Any]]:
        with self._conn.cursor(row_factory=dict_row) as cur:
            return cur.execute(query, params).fetchall()

    def create(
        self,
        *,
        customer_id: int,
        currency: Currency,
        items: Sequence[LineItem],
        discount: PercentDiscount | AmountDiscount | None,
        issued_on: date,
        due_days: int,
    ) -> Invoice:
        customer = self._users.require(customer_id)  # UserNotFoundError for a stranger
        totals = compute_totals(currency, items, discount)
        now = _now()
        rows = self._rows(
            f"INSERT INTO invoices (customer_id, customer_email, currency, status, issued_on,"
            f" due_on, discount_json, totals_json, created_at, updated_at, items_json)"
            f" VALUES (%s, %s, %s, 'open', %s, %s, %s, %s, %s, %s, %s) RETURNING {_COLUMNS}",
            (
                customer.id,
                customer.email,
                currency,
                issued_on,
                issued_on + timedelta(days=due_days),
                None if discount is None else _json(discount.model_dump_json()),
                _json(totals.model_dump_json()),
                now,
                now,
                _json(_ITEMS.dump_json(list(items)).decode()),
            ),
        )
        return _invoice(rows[0])

    def get(self, invoice_id: int) -> Invoice | None:
        rows = self._rows(f"SELECT {_COLUMNS} FROM invoices WHERE id = %s", (invoice_id,))
        return _invoice(rows[0]) if rows else None

    def require(self, invoice_id: int) -> Invoice:
        invoice = self.get(invoice_id)
        if invoice is None:
            raise InvoiceNotFoundError(invoice_id)
        return invoice

    def apply_discount(
        self, invoice_id: int, discount: PercentDiscount | AmountDiscount | None
    ) -> Invoice:
        """Replace an open invoice's discount and recompute its totals from its line items."""
        rows = self._rows(  # the row stays locked until the transaction ends
            "SELECT status, currency, items_json FROM invoices WHERE id = %s FOR UPDATE",
            (invoice_id,),
        )
        if not rows:
            raise InvoiceNotFoundError(invoice_id)
        row = rows[0]
        if row["status"] != "open":
            raise InvoiceNotOpenError(invoice_id, row["status"])
        items = _ITEMS.validate_python(row["items_json"])
        totals = compute_totals(row["currency"], items, discount)
        self._conn.execute(
            "UPDATE invoices SET discount_json = %s, totals_json = %s, updated_at = %s"
            " WHERE id = %s",
            (
                None if discount is None else _json(discount.model_dump_json()),
                _json(totals.model_dump_json()),
                _now(),
                invoice_id,
            ),
        )
        return self.require(invoice_id)

    def set_status(self, invoice_id: int, status: Status) -> Invoice:
        cursor = self._conn.execute(
            "UPDATE invoices SET status = %s, updated_at = %s WHERE id = %s",
            (status, _now(), invoice_id),
        )
        if cursor.rowcount == 0:
            raise InvoiceNotFoundError(invoice_id)
        return self.require(invoice_id)

    def find(
        self,
        *,
        customer_id: int | None = None,
        currency: Currency | None = None,
        status: Status | None = None,
        issued_from: date | None = None,
        issued_to: date | None = None,
        limit: int | None = None,
    ) -> list[Invoice]:
        """Invoices matching every given filter, by issue date then id; dates inclusive."""
        clauses: list[str] = []
        params: list[str | int | date] = []
        for clause, value in (
            ("customer_id = %s", customer_id),
            ("currency = %s", currency),
            ("status = %s", status),
            ("issued_on >= %s", issued_from),
            ("issued_on <= %s", issued_to),
        ):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        tail = ""
        if limit is not None:
            tail = " LIMIT %s"
            params.append(limit)
        rows = self._rows(
            f"SELECT {_COLUMNS} FROM invoices {where} ORDER BY issued_on, id{tail}", params
        )
        return [_invoice(row) for row in rows]
