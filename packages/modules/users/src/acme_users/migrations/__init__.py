"""acme-users' schema migrations: plain SQL files applied in order by switchyard-db."""
