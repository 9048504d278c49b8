"""Invoices stored beside the users they bill, in the acme database (see acme_users)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from acme_users import Migration, UserStore, apply_migrations
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

COMPONENT: Final = "billing"
BILLING_MIGRATIONS: Final = (
    Migration(
        1,
        "create invoices",
        (
            """CREATE TABLE invoices (
                id             INTEGER PRIMARY KEY AUTOINCREMENT,
                customer_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
                customer_email TEXT NOT NULL,
                currency       TEXT NOT NULL,
                status         TEXT NOT NULL CHECK (status IN ('open', 'paid', 'void')),
                issued_on      TEXT NOT NULL,
                due_on         TEXT NOT NULL,
                items_json     TEXT NOT NULL,
                discount_json  TEXT,
                totals_json    TEXT NOT NULL,
                created_at     TEXT NOT NULL,
                updated_at     TEXT NOT NULL
            )""",
        ),
    ),
    Migration(
        2,
        "index invoices by issue date and customer",
        (
            "CREATE INDEX invoices_issued_on ON invoices (issued_on, id)",
            "CREATE INDEX invoices_customer ON invoices (customer_id, issued_on)",
        ),
    ),
)

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


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _invoice(row: sqlite3.Row) -> Invoice:
    discount = row["discount_json"]
    return Invoice(
        id=row["id"],
        number=invoice_number(row["id"]),
        customer_id=row["customer_id"],
        customer_email=row["customer_email"],
        status=row["status"],
        issued_on=date.fromisoformat(row["issued_on"]),
        due_on=date.fromisoformat(row["due_on"]),
        discount=None if discount is None else _DISCOUNT.validate_json(discount),
        totals=Totals.model_validate_json(row["totals_json"]),
        created_at=datetime.fromisoformat(row["created_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
    )


class InvoiceStore:
    """Invoices in the acme database; ``InvoiceStore.open(path)`` migrates users and billing.

    Totals are computed when an invoice is created or changed and stored frozen, so a later
    change of rounding policy never rewrites an issued invoice.
    """

    __slots__ = ("_users",)

    def __init__(self, users: UserStore) -> None:
        self._users = users

    @classmethod
    def open(cls, db_path: str | Path | None = None) -> Self:
        users = UserStore.open(db_path)
        try:
            apply_migrations(users.connection, COMPONENT, BILLING_MIGRATIONS)
        except BaseException:
            users.close()
            raise
        return cls(users)

    @property
    def users(self) -> UserStore:
        return self._users

    def close(self) -> None:
        self._users.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def _conn(self) -> sqlite3.Connection:
        return self._users.connection

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
        cursor = self._conn.execute(
            "INSERT INTO invoices (customer_id, customer_email, currency, status, issued_on,"
            " due_on, discount_json, totals_json, created_at, updated_at, items_json)"
            " VALUES (?, ?, ?, 'open', ?, ?, ?, ?, ?, ?, ?)",
            (
                customer.id,
                customer.email,
                currency,
                issued_on.isoformat(),
                (issued_on + timedelta(days=due_days)).isoformat(),
                None if discount is None else discount.model_dump_json(),
                totals.model_dump_json(),
                now,
                now,
                _ITEMS.dump_json(list(items)).decode(),
            ),
        )
        assert cursor.lastrowid is not None
        return self.require(cursor.lastrowid)

    def get(self, invoice_id: int) -> Invoice | None:
        row = self._conn.execute(
            f"SELECT {_COLUMNS} FROM invoices WHERE id = ?", (invoice_id,)
        ).fetchone()
        return None if row is None else _invoice(row)

    def require(self, invoice_id: int) -> Invoice:
        invoice = self.get(invoice_id)
        if invoice is None:
            raise InvoiceNotFoundError(invoice_id)
        return invoice

    def apply_discount(
        self, invoice_id: int, discount: PercentDiscount | AmountDiscount | None
    ) -> Invoice:
        """Replace an open invoice's discount and recompute its totals from its line items."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            row = self._conn.execute(
                "SELECT status, currency, items_json FROM invoices WHERE id = ?", (invoice_id,)
            ).fetchone()
            if row is None:
                raise InvoiceNotFoundError(invoice_id)
            if row["status"] != "open":
                raise InvoiceNotOpenError(invoice_id, row["status"])
            items = _ITEMS.validate_json(row["items_json"])
            totals = compute_totals(row["currency"], items, discount)
            self._conn.execute(
                "UPDATE invoices SET discount_json = ?, totals_json = ?, updated_at = ?"
                " WHERE id = ?",
                (
                    None if discount is None else discount.model_dump_json(),
                    totals.model_dump_json(),
                    _now(),
                    invoice_id,
                ),
            )
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")
        return self.require(invoice_id)

    def set_status(self, invoice_id: int, status: Status) -> Invoice:
        cursor = self._conn.execute(
            "UPDATE invoices SET status = ?, updated_at = ? WHERE id = ?",
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
        params: list[str | int] = []
        for clause, value in (
            ("customer_id = ?", customer_id),
            ("currency = ?", currency),
            ("status = ?", status),
            ("issued_on >= ?", None if issued_from is None else issued_from.isoformat()),
            ("issued_on <= ?", None if issued_to is None else issued_to.isoformat()),
        ):
            if value is not None:
                clauses.append(clause)
                params.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        tail = ""
        if limit is not None:
            tail = " LIMIT ?"
            params.append(limit)
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM invoices {where} ORDER BY issued_on, id{tail}", params
        )
        return [_invoice(row) for row in rows]
