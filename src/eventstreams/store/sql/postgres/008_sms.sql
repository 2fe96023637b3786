-- The twilio-sms sink's ledger (sinks/twilio_sms): one row per (sink, tracking messageId, recipient), claimed
-- before the text is sent, so a retry or a replay never sends a second SMS. A row with message_sid was sent;
-- status 'claimed' is a send in flight (or one a crash interrupted: claimed_ms says since when); 'rejected'
-- is a terminal answer from Twilio (may be claimed again). Status callbacks find the row by message_sid.
CREATE TABLE sms_messages (
    account_sid TEXT NOT NULL REFERENCES accounts(sid) ON DELETE CASCADE,
    sink_sid TEXT NOT NULL,
    message_id TEXT NOT NULL,
    recipient TEXT NOT NULL,
    event_id TEXT NOT NULL,
    profile_id TEXT,
    user_id TEXT,
    anonymous_id TEXT,
    rate_key TEXT NOT NULL,
    message_sid TEXT,
    status TEXT NOT NULL,
    error_code INTEGER,
    claimed_ms BIGINT NOT NULL,
    date_created TEXT NOT NULL,
    date_updated TEXT NOT NULL,
    PRIMARY KEY (account_sid, sink_sid, message_id, recipient)
);
CREATE INDEX sms_messages_sid ON sms_messages(account_sid, message_sid);
CREATE INDEX sms_messages_rate ON sms_messages(account_sid, sink_sid, rate_key, claimed_ms);
