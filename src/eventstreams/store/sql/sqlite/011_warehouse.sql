-- The warehouse (warehouse/, objectsource/; docs/warehouse.md). A schema name in the warehouse belongs to one
-- owner across the installation (an object source, or an account's events warehouse): the warehouse is the
-- operator's database, and two owners writing one schema would overwrite each other's rows. A deleted source's
-- claim stays with its account (owner_sid 'released:<source sid>'): its tables stay in the warehouse, so only
-- that account may take the name again.
CREATE TABLE warehouse_schemas (
    schema_name TEXT PRIMARY KEY,
    account_sid TEXT NOT NULL REFERENCES accounts(sid) ON DELETE CASCADE,
    owner_sid TEXT NOT NULL UNIQUE
);

-- Twilio object sources: what to sync from which Twilio account, when. The credential's secret is sealed.
CREATE TABLE object_sources (
    sid TEXT PRIMARY KEY,
    account_sid TEXT NOT NULL REFERENCES accounts(sid) ON DELETE CASCADE,
    friendly_name TEXT NOT NULL,
    schema_name TEXT NOT NULL UNIQUE,
    twilio_account_sid TEXT NOT NULL,
    key_sid TEXT,
    secret_sealed TEXT NOT NULL,
    base_url TEXT NOT NULL,
    start_date TEXT,
    collections TEXT NOT NULL,
    schedule TEXT NOT NULL,
    lookback_seconds INTEGER NOT NULL,
    include_subaccounts BOOLEAN NOT NULL,
    enabled BOOLEAN NOT NULL,
    full_sync_requested BOOLEAN NOT NULL,
    full_requested_at DOUBLE PRECISION,
    next_run_at DOUBLE PRECISION,
    lease_owner TEXT,
    lease_until DOUBLE PRECISION,
    last_error TEXT,
    date_created TEXT NOT NULL,
    date_updated TEXT NOT NULL,
    UNIQUE (account_sid, friendly_name)
);
CREATE INDEX object_sources_due ON object_sources(next_run_at);

-- Where each (source, Twilio account, collection) stands. cursor: the newest cursor value loaded (ISO UTC);
-- resume_uri/pass_*: an unfinished pass (the next page to read and the pass's bounds), so a killed sync
-- goes on from the last page it committed.
CREATE TABLE object_source_state (
    source_sid TEXT NOT NULL REFERENCES object_sources(sid) ON DELETE CASCADE,
    twilio_account_sid TEXT NOT NULL,
    collection TEXT NOT NULL,
    cursor TEXT,
    resume_uri TEXT,
    pass_kind TEXT,
    pass_cursor TEXT,
    pass_lower TEXT,
    date_updated TEXT NOT NULL,
    PRIMARY KEY (source_sid, twilio_account_sid, collection)
);

-- One row per sync run, and one per collection and Twilio account within it (the Overview tab).
CREATE TABLE object_source_runs (
    sid TEXT PRIMARY KEY,
    account_sid TEXT NOT NULL REFERENCES accounts(sid) ON DELETE CASCADE,
    source_sid TEXT NOT NULL REFERENCES object_sources(sid) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    trigger TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    date_started TEXT NOT NULL,
    date_finished TEXT
);
CREATE INDEX object_source_runs_source ON object_source_runs(source_sid, date_started);

CREATE TABLE object_source_run_collections (
    run_sid TEXT NOT NULL REFERENCES object_source_runs(sid) ON DELETE CASCADE,
    twilio_account_sid TEXT NOT NULL,
    collection TEXT NOT NULL,
    status TEXT NOT NULL,
    rows_read INTEGER NOT NULL,
    rows_upserted INTEGER NOT NULL,
    duration DOUBLE PRECISION NOT NULL,
    cursor TEXT,
    error TEXT,
    PRIMARY KEY (run_sid, twilio_account_sid, collection)
);

-- An account's events warehouse: its tracking messages and Event Streams events, loaded into Segment's
-- tables in schema_name, after the last seq loaded of each.
CREATE TABLE events_warehouses (
    account_sid TEXT PRIMARY KEY REFERENCES accounts(sid) ON DELETE CASCADE,
    sid TEXT NOT NULL UNIQUE,
    schema_name TEXT NOT NULL UNIQUE,
    enabled BOOLEAN NOT NULL,
    interval_seconds INTEGER NOT NULL,
    tracking_seq BIGINT NOT NULL,
    events_seq BIGINT NOT NULL,
    rows_loaded BIGINT NOT NULL,
    next_run_at DOUBLE PRECISION,
    lease_owner TEXT,
    lease_until DOUBLE PRECISION,
    last_run_at TEXT,
    last_error TEXT,
    date_created TEXT NOT NULL,
    date_updated TEXT NOT NULL
);
