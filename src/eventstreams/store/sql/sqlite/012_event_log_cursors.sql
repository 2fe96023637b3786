-- The event log read by per-sink cursors (issue 13). An event is written once; each subscribed sink reads
-- the log in seq order from its cursor. Only failures become rows (`deliveries`, now the retry table: also
-- replays and sink tests); successes leave nothing but the cursor's move and the chunk's log entry.

-- Where a sink has read the log to: every event of its account with seq <= position was handed to a batch
-- (or was not the sink's). Created with the sink's first subscription at the log's head.
CREATE TABLE sink_cursors (
    sink_sid TEXT PRIMARY KEY,
    account_sid TEXT NOT NULL,
    position INTEGER NOT NULL
);

-- A range of the log being sent: (from_seq, to_seq] of one sink, under a lease. A batch whose lease expired
-- (its worker died) is taken over and sent again: at least once.
CREATE TABLE delivery_batches (
    id INTEGER PRIMARY KEY,
    sink_sid TEXT NOT NULL,
    account_sid TEXT NOT NULL,
    from_seq INTEGER NOT NULL,
    to_seq INTEGER NOT NULL,
    leased_by TEXT NOT NULL,
    lease_until INTEGER NOT NULL
);
CREATE INDEX delivery_batches_sink ON delivery_batches(sink_sid, lease_until);

-- A subscribed type delivers the events published after it was added (as fan-out at publish did).
ALTER TABLE subscribed_events ADD COLUMN from_seq INTEGER NOT NULL DEFAULT 0;

-- The cursors' scan: an account's events in log order. A sink test's event is for that sink alone
-- (only_sink), so no cursor reads it.
CREATE INDEX events_account_seq ON events(account_sid, seq);
ALTER TABLE events ADD COLUMN only_sink TEXT;

-- Sinks subscribed today start at the head: what was published before is already a row in deliveries.
INSERT INTO sink_cursors (sink_sid, account_sid, position)
SELECT s.sid, s.account_sid, (SELECT COALESCE(MAX(seq), 0) FROM events) FROM sinks s
WHERE EXISTS (SELECT 1 FROM subscriptions x WHERE x.sink_sid = s.sid);

-- Events' seqs now come from seq_counters (never back, even once retention has emptied the log): start the
-- counter at the log's head, where the cursors above stand, before any new event takes a number.
INSERT INTO seq_counters (name, value) SELECT 'events', COALESCE(MAX(seq), 0) FROM events WHERE true
ON CONFLICT (name) DO UPDATE SET value = MAX(seq_counters.value, excluded.value);
