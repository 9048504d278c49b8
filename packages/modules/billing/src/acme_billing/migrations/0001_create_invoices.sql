CREATE TABLE invoices (
    id             bigserial   PRIMARY KEY,
    customer_id    bigint      NOT NULL REFERENCES users (id) ON DELETE RESTRICT,
    customer_email text        NOT NULL,
    currency       text        NOT NULL,
    status         text        NOT NULL CHECK (status IN ('open', 'paid', 'void')),
    issued_on      date        NOT NULL,
    due_on         date        NOT NULL,
    items_json     jsonb       NOT NULL,
    discount_json  jsonb,
    totals_json    jsonb       NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL
);
