"""acme-billing's schema migrations: plain SQL files applied in order by switchyard-db."""
