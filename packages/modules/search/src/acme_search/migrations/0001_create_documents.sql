CREATE TABLE search_documents (
    id         text        PRIMARY KEY,
    dim        integer     NOT NULL,
    embedding  real[]      NOT NULL,
    metadata   jsonb       NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL
);
CREATE INDEX search_documents_dim ON search_documents (dim, id);
