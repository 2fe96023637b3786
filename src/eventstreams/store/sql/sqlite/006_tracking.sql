-- The Segment-compatible tracking API (tracking/): sources with write keys, and every message received.
-- A write key is looked up by its SHA-256 (key_hash) and kept Fernet-sealed for its owner to read.
CREATE TABLE tracking_sources (
    sid TEXT PRIMARY KEY,
    account_sid TEXT NOT NULL REFERENCES accounts(sid) ON DELETE CASCADE,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    key_sealed TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    rate_limit INTEGER NOT NULL,
    date_created TEXT NOT NULL,
    date_updated TEXT NOT NULL,
    UNIQUE (account_sid, name)
);

-- Accepted and rejected messages alike (rejected ones with their reason: the source's debugger shows them).
CREATE TABLE tracking_messages (
    seq INTEGER PRIMARY KEY,
    account_sid TEXT NOT NULL REFERENCES accounts(sid) ON DELETE CASCADE,
    source_sid TEXT NOT NULL REFERENCES tracking_sources(sid) ON DELETE CASCADE,
    message_id TEXT NOT NULL,
    type TEXT,
    status TEXT NOT NULL,
    reason TEXT,
    received_at TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX tracking_messages_source ON tracking_messages(source_sid, seq);

-- messageId dedupe per account, for EVENTSTREAMS_TRACKING_DEDUPE_SECONDS (24 h).
CREATE TABLE tracking_message_ids (
    account_sid TEXT NOT NULL,
    message_id TEXT NOT NULL,
    seen_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (account_sid, message_id)
);
