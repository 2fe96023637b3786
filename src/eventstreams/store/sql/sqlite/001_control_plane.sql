-- Accounts, credentials, catalogue and the Events v1 control plane.
CREATE TABLE accounts (
    sid TEXT PRIMARY KEY,
    parent_sid TEXT REFERENCES accounts(sid),
    friendly_name TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'active',
    token_hash TEXT NOT NULL,
    token_sealed TEXT NOT NULL,
    date_created TEXT NOT NULL,
    date_updated TEXT NOT NULL
);
CREATE INDEX accounts_parent ON accounts(parent_sid, date_created, sid);

CREATE TABLE api_keys (
    sid TEXT PRIMARY KEY,
    account_sid TEXT NOT NULL REFERENCES accounts(sid),
    friendly_name TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    date_created TEXT NOT NULL,
    date_updated TEXT NOT NULL
);
CREATE INDEX api_keys_account ON api_keys(account_sid, date_created, sid);

-- owner_sid NULL: shipped with the package; otherwise registered by that account.
CREATE TABLE schema_versions (
    schema_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    owner_sid TEXT,
    document TEXT NOT NULL,
    date_created TEXT NOT NULL,
    PRIMARY KEY (schema_id, version)
);

CREATE TABLE event_types (
    type TEXT PRIMARY KEY,
    schema_id TEXT NOT NULL,
    owner_sid TEXT,
    description TEXT NOT NULL,
    status TEXT NOT NULL,
    documentation_url TEXT,
    segment_compatible INTEGER NOT NULL DEFAULT 0,
    date_created TEXT NOT NULL,
    date_updated TEXT NOT NULL
);
CREATE INDEX event_types_schema ON event_types(schema_id, type);

CREATE TABLE sinks (
    sid TEXT PRIMARY KEY,
    account_sid TEXT NOT NULL REFERENCES accounts(sid),
    description TEXT NOT NULL,
    sink_type TEXT NOT NULL,
    configuration_sealed TEXT NOT NULL,
    status TEXT NOT NULL,
    signing_secret_sealed TEXT NOT NULL,
    date_created TEXT NOT NULL,
    date_updated TEXT NOT NULL
);
CREATE INDEX sinks_account ON sinks(account_sid, date_created, sid);

CREATE TABLE sink_tests (
    test_id TEXT PRIMARY KEY,
    sink_sid TEXT NOT NULL REFERENCES sinks(sid) ON DELETE CASCADE,
    date_created TEXT NOT NULL
);

CREATE TABLE subscriptions (
    sid TEXT PRIMARY KEY,
    account_sid TEXT NOT NULL REFERENCES accounts(sid),
    sink_sid TEXT NOT NULL REFERENCES sinks(sid),
    description TEXT NOT NULL,
    date_created TEXT NOT NULL,
    date_updated TEXT NOT NULL
);
CREATE INDEX subscriptions_account ON subscriptions(account_sid, date_created, sid);
CREATE INDEX subscriptions_sink ON subscriptions(sink_sid);

CREATE TABLE subscribed_events (
    subscription_sid TEXT NOT NULL REFERENCES subscriptions(sid) ON DELETE CASCADE,
    type TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    account_sid TEXT NOT NULL,
    PRIMARY KEY (subscription_sid, type)
);
CREATE INDEX subscribed_events_type ON subscribed_events(account_sid, type);
