-- The store itself: migrations bookkeeping and health.

-- name: migrations_table
CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL);

-- name: applied
SELECT name FROM schema_migrations;

-- name: record_migration
INSERT INTO schema_migrations (name, applied_at) VALUES (:n, CURRENT_TIMESTAMP);

-- name: ping
SELECT 1 AS ok;
