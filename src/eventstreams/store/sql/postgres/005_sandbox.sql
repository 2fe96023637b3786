-- The Twilio sandbox (eventstreams sandbox): Twilio REST 2010-04-01 resources owned by our accounts.
-- Dates are ISO 8601 UTC text ("2026-01-02T03:04:05Z"), as elsewhere, so text order is time order.
-- next_step_at: when the status clock (sandbox/lifecycle.py) moves a row on, or its lease while a step runs.
CREATE TABLE sandbox_messages (
    sid TEXT PRIMARY KEY,
    account_sid TEXT NOT NULL REFERENCES accounts(sid) ON DELETE CASCADE,
    messaging_service_sid TEXT,
    direction TEXT NOT NULL,
    from_number TEXT NOT NULL,
    to_number TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    num_segments INTEGER NOT NULL,
    num_media INTEGER NOT NULL,
    price TEXT,
    price_unit TEXT NOT NULL,
    error_code INTEGER,
    error_message TEXT,
    status_callback TEXT,
    outcome TEXT,
    next_step_at DOUBLE PRECISION,
    date_created TEXT NOT NULL,
    date_updated TEXT NOT NULL,
    date_sent TEXT
);
CREATE INDEX sandbox_messages_list ON sandbox_messages(account_sid, date_created, sid);
CREATE INDEX sandbox_messages_sent ON sandbox_messages(account_sid, date_sent);
CREATE INDEX sandbox_messages_due ON sandbox_messages(next_step_at) WHERE next_step_at IS NOT NULL;

CREATE TABLE sandbox_calls (
    sid TEXT PRIMARY KEY,
    account_sid TEXT NOT NULL REFERENCES accounts(sid) ON DELETE CASCADE,
    parent_call_sid TEXT,
    to_number TEXT NOT NULL,
    to_formatted TEXT NOT NULL,
    from_number TEXT NOT NULL,
    from_formatted TEXT NOT NULL,
    phone_number_sid TEXT,
    status TEXT NOT NULL,
    start_time TEXT,
    end_time TEXT,
    duration INTEGER,
    price TEXT,
    price_unit TEXT NOT NULL,
    direction TEXT NOT NULL,
    answered_by TEXT,
    forwarded_from TEXT,
    group_sid TEXT,
    caller_name TEXT,
    queue_time INTEGER NOT NULL,
    trunk_sid TEXT,
    status_callback TEXT,
    status_callback_events TEXT,
    outcome TEXT,
    next_step_at DOUBLE PRECISION,
    date_created TEXT NOT NULL,
    date_updated TEXT NOT NULL
);
CREATE INDEX sandbox_calls_list ON sandbox_calls(account_sid, date_created, sid);
CREATE INDEX sandbox_calls_start ON sandbox_calls(account_sid, start_time);
CREATE INDEX sandbox_calls_end ON sandbox_calls(account_sid, end_time);
CREATE INDEX sandbox_calls_due ON sandbox_calls(next_step_at) WHERE next_step_at IS NOT NULL;

-- Call feedback (deprecated by Twilio, still linked from calls): at most one per call; issues is a JSON array.
CREATE TABLE sandbox_call_feedback (
    call_sid TEXT PRIMARY KEY REFERENCES sandbox_calls(sid) ON DELETE CASCADE,
    account_sid TEXT NOT NULL REFERENCES accounts(sid) ON DELETE CASCADE,
    quality_score INTEGER NOT NULL,
    issues TEXT NOT NULL,
    date_created TEXT NOT NULL,
    date_updated TEXT NOT NULL
);

CREATE TABLE sandbox_conferences (
    sid TEXT PRIMARY KEY,
    account_sid TEXT NOT NULL REFERENCES accounts(sid) ON DELETE CASCADE,
    friendly_name TEXT NOT NULL,
    region TEXT NOT NULL,
    status TEXT NOT NULL,
    reason_conference_ended TEXT,
    call_sid_ending_conference TEXT,
    date_created TEXT NOT NULL,
    date_updated TEXT NOT NULL
);
CREATE INDEX sandbox_conferences_list ON sandbox_conferences(account_sid, date_created, sid);

CREATE TABLE sandbox_transcriptions (
    sid TEXT PRIMARY KEY,
    account_sid TEXT NOT NULL REFERENCES accounts(sid) ON DELETE CASCADE,
    recording_sid TEXT NOT NULL,
    status TEXT NOT NULL,
    transcription_text TEXT,
    type TEXT NOT NULL,
    duration INTEGER,
    price TEXT,
    price_unit TEXT NOT NULL,
    date_created TEXT NOT NULL,
    date_updated TEXT NOT NULL
);
CREATE INDEX sandbox_transcriptions_list ON sandbox_transcriptions(account_sid, date_created, sid);

CREATE TABLE sandbox_addresses (
    sid TEXT PRIMARY KEY,
    account_sid TEXT NOT NULL REFERENCES accounts(sid) ON DELETE CASCADE,
    customer_name TEXT NOT NULL,
    friendly_name TEXT,
    street TEXT NOT NULL,
    street_secondary TEXT,
    city TEXT NOT NULL,
    region TEXT NOT NULL,
    postal_code TEXT NOT NULL,
    iso_country TEXT NOT NULL,
    emergency_enabled BOOLEAN NOT NULL,
    validated BOOLEAN NOT NULL,
    verified BOOLEAN NOT NULL,
    date_created TEXT NOT NULL,
    date_updated TEXT NOT NULL
);
CREATE INDEX sandbox_addresses_list ON sandbox_addresses(account_sid, date_created, sid);

-- Per-account behaviour switches (status clock, outcome rules, injected 429/5xx) as a JSON object;
-- absent keys fall back to the EVENTSTREAMS_SANDBOX_* settings.
CREATE TABLE sandbox_settings (
    account_sid TEXT PRIMARY KEY REFERENCES accounts(sid) ON DELETE CASCADE,
    document TEXT NOT NULL,
    date_updated TEXT NOT NULL
);
