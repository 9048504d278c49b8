-- Similarity in PostgreSQL with pgvector when the server has it (the embedded server does);
-- without it, acme-search ranks the stored embeddings with numpy instead.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector') THEN
        CREATE EXTENSION IF NOT EXISTS vector;
        ALTER TABLE search_documents ADD COLUMN vec vector;
    END IF;
END
$$;
