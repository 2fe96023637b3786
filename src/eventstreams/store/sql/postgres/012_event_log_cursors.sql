-- The event log read by per-sink cursors (issue 13). An event is written once; each subscribed sink reads
-- the log in seq order from its cursor. Only failures become rows (`deliveries`, now the retry table: also
-- replays and sink tests); successes leave nothing but the cursor's move and the chunk's log entry.

-- Where a sink has read the log to: every event of its account with seq <= position was handed to a batch
-- (or was not the sink's). Created with the sink's first subscription at the log's head.
CREATE TABLE sink_cursors (
    sink_sid TEXT PRIMARY KEY,
    account_sid TEXT NOT NULL,
    position BIGINT NOT NULL
);

-- A range of the log being sent: (from_seq, to_seq] of one sink, under a lease. A batch whose lease expired
-- (its worker died) is taken over and sent again: at least once.
CREATE TABLE delivery_batches (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sink_sid TEXT NOT NULL,
    account_sid TEXT NOT NULL,
    from_seq BIGINT NOT NULL,
    to_seq BIGINT NOT NULL,
    leased_by TEXT NOT NULL,
    lease_until BIGINT NOT NULL
);
CREATE INDEX delivery_batches_sink ON delivery_batches(sink_sid, lease_until);

-- A subscribed type delivers the events published after it was added (as fan-out at publish did).
ALTER TABLE subscribed_events ADD COLUMN from_seq BIGINT NOT NULL DEFAULT 0;

-- The cursors' scan: an account's events in log order. A sink test's event is for that sink alone
-- (only_sink), so no cursor reads it.
CREATE INDEX events_account_seq ON events(account_sid, seq);
ALTER TABLE events ADD COLUMN only_sink TEXT;

-- Sinks subscribed today start at the head: what was published before is already a row in deliveries.
INSERT INTO sink_cursors (sink_sid, account_sid, position)
SELECT s.sid, s.account_sid, (SELECT COALESCE(MAX(seq), 0) FROM events) FROM sinks s
WHERE EXISTS (SELECT 1 FROM subscriptions x WHERE x.sink_sid = s.sid);
