ALTER TABLE users ADD COLUMN bio text NOT NULL DEFAULT '';
CREATE INDEX users_created_at ON users (created_at, id);
