-- Sequence numbers that never go back. SQLite hands out MAX(seq) + 1, which reuses the numbers of
-- deleted rows (a deleted source's messages) that other tables still point at (profile_events);
-- AUTOINCREMENT would do it with sqlite_sequence, at one more write per insert. PostgreSQL's identity
-- sequences already never go back, so there the table stays empty (it exists for schema parity).
CREATE TABLE seq_counters (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
