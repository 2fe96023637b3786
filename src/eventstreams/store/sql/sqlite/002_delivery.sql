-- Events, fan-out deliveries, dead letters, logs, alerts.
-- Times are epoch milliseconds (INTEGER) on the delivery path: cheap to compare and index.
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    account_sid TEXT NOT NULL,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    schema_version INTEGER,
    received_at INTEGER NOT NULL,
    time TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX events_account_received ON events(account_sid, received_at);
CREATE INDEX events_account_id ON events(account_sid, id);

-- Publish dedupe: one row per (account, id) for the dedupe window, pruned after it.
CREATE TABLE event_ids (
    account_sid TEXT NOT NULL,
    id TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (account_sid, id)
) WITHOUT ROWID;
CREATE INDEX event_ids_received ON event_ids(received_at);

-- One row per pending (event, sink). Leased by moving due_at forward and setting leased_by.
CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY,
    sink_sid TEXT NOT NULL,
    account_sid TEXT NOT NULL,
    event_seq INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    window_start INTEGER NOT NULL, -- retries stop (dead letter) once this is older than the retry window
    due_at INTEGER NOT NULL,
    leased_by TEXT,
    last_code INTEGER,
    last_error TEXT
);
CREATE INDEX deliveries_due ON deliveries(sink_sid, due_at);
CREATE INDEX deliveries_event ON deliveries(event_seq);

CREATE TABLE dead_letters (
    id INTEGER PRIMARY KEY,
    account_sid TEXT NOT NULL,
    sink_sid TEXT NOT NULL,
    event_seq INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    type TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    last_code INTEGER,
    last_error TEXT,
    dead_at INTEGER NOT NULL
);
CREATE INDEX dead_letters_sink ON dead_letters(account_sid, sink_sid, dead_at);
CREATE INDEX dead_letters_event ON dead_letters(event_seq);

-- One row per request outcome (successes aggregated per recorded chunk).
CREATE TABLE delivery_log (
    id INTEGER PRIMARY KEY,
    account_sid TEXT NOT NULL,
    sink_sid TEXT NOT NULL,
    at INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    event_count INTEGER NOT NULL,
    event_ids TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    code INTEGER,
    http_status INTEGER,
    detail TEXT
);
CREATE INDEX delivery_log_sink ON delivery_log(account_sid, sink_sid, at);
CREATE INDEX delivery_log_at ON delivery_log(at);

-- The debugger: delivery errors and the alerts raised from them (Monitor Alerts shape).
CREATE TABLE alerts (
    sid TEXT PRIMARY KEY,
    account_sid TEXT NOT NULL,
    sink_sid TEXT NOT NULL,
    error_code INTEGER NOT NULL,
    log_level TEXT NOT NULL,
    alert_text TEXT NOT NULL,
    http_status INTEGER,
    response_body TEXT,
    request_url TEXT,
    error_count INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX alerts_account ON alerts(account_sid, created_at, sid);

-- Per-sink alert grouping state (first error, errors since last alert).
CREATE TABLE sink_alert_state (
    sink_sid TEXT PRIMARY KEY,
    account_sid TEXT NOT NULL,
    total_errors INTEGER NOT NULL,
    errors_since_alert INTEGER NOT NULL,
    last_alert_at INTEGER NOT NULL,
    next_threshold INTEGER NOT NULL
);
