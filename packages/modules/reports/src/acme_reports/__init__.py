"""acme-reports: revenue aggregations over acme-billing's invoices, as JSON or CSV."""

from __future__ import annotations

from acme_reports._aggregate import CurrencyTotal, CustomerRank, RevenueRow
from acme_reports.actions import (
    CsvExport,
    CustomerStatement,
    CustomerStatementIn,
    ExportCsvIn,
    RevenueSummary,
    RevenueSummaryIn,
    StatementLine,
    TopCustomers,
    TopCustomersIn,
    customer_statement,
    export_csv,
    revenue_summary,
    top_customers,
)

ACTIONS = (revenue_summary, top_customers, export_csv, customer_statement)

__all__ = [
    "ACTIONS",
    "CsvExport",
    "CurrencyTotal",
    "CustomerRank",
    "CustomerStatement",
    "CustomerStatementIn",
    "ExportCsvIn",
    "RevenueRow",
    "RevenueSummary",
    "RevenueSummaryIn",
    "StatementLine",
    "TopCustomers",
    "TopCustomersIn",
    "customer_statement",
    "export_csv",
    "revenue_summary",
    "top_customers",
]
