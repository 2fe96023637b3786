-- Events and their deliveries: the event log read by per-sink cursors, in-flight batches, the retry table
-- (`deliveries`: failures, replays, sink tests), outcomes, expiry, replay.

-- name: fanned_sinks
SELECT DISTINCT s.sink_sid FROM subscribed_events se JOIN subscriptions s ON s.sid = se.subscription_sid
WHERE se.account_sid = :a AND se.type IN LIST(:types);

-- name: mark_only_sink
UPDATE events SET only_sink = :s WHERE seq IN LIST(:seqs);

-- name: sink_types
-- What the sink reads from the log: each type it is subscribed to now, from the earliest log position one of
-- its subscriptions added it at. Decided when the cursor reads (not at publish): an event not yet read when
-- the sink's last subscription to its type goes is not delivered (docs/delivery.md).
SELECT se.type, MIN(se.from_seq) AS from_seq FROM subscribed_events se
JOIN subscriptions x ON x.sid = se.subscription_sid WHERE x.sink_sid = :s GROUP BY se.type;

-- name: lease_start
-- What a lease needs to know, in one round trip: the sink's cursor and its account's head (see cursor below),
-- the oldest batch whose lease ran out, when the next retry and batch lease fall due, and the types the sink
-- reads (sink_types) as
-- [[type, from_seq], ...]; on PostgreSQL {redoable} makes the lease's COMMIT not wait for the disk. Nothing is
-- locked: the batch is taken and the cursor moved by compare-and-set.
SELECT c.account_sid, c.position,
    (SELECT MAX(e.seq) FROM events e WHERE e.account_sid = c.account_sid) AS head,
    (SELECT b.id FROM delivery_batches b WHERE b.sink_sid = k.sid AND b.lease_until <= :now
     ORDER BY b.id LIMIT 1) AS expired,
    (SELECT MIN(d.due_at) FROM deliveries d WHERE d.sink_sid = k.sid) AS retry_due,
    (SELECT MIN(b.lease_until) FROM delivery_batches b WHERE b.sink_sid = k.sid) AS batch_due,
    (SELECT JSON_PAIRS(t.type, t.from_seq) FROM (
        SELECT se.type, MIN(se.from_seq) AS from_seq FROM subscribed_events se
        JOIN subscriptions x ON x.sid = se.subscription_sid WHERE x.sink_sid = k.sid GROUP BY se.type) t) AS types,
    {redoable} AS redoable
FROM (SELECT CAST(:s AS TEXT) AS sid) k LEFT JOIN sink_cursors c ON c.sink_sid = k.sid;

-- name: move_cursor
-- Compare-and-set: 0 rows when another worker moved it since lease_start read it (on PostgreSQL this waits
-- for that worker's COMMIT, then sees the new position).
UPDATE sink_cursors SET position = :to WHERE sink_sid = :s AND position = :pos;

-- name: take_expired_batch
UPDATE delivery_batches SET leased_by = :lease, lease_until = :until WHERE id = :id AND lease_until <= :now
RETURNING account_sid, from_seq, to_seq;

-- name: cursor
-- With the account's head, the newest event, in one round trip (an idle sink's poll asks little). On
-- PostgreSQL, events of one account commit in seq order (the publish takes the account's log lock before its
-- seqs), so everything up to the head seen here is committed: a cursor never steps over an event that commits
-- later. The log is then read up to that head only.
SELECT c.account_sid, c.position,
    (SELECT MAX(e.seq) FROM events e WHERE e.account_sid = c.account_sid) AS head
FROM sink_cursors c WHERE c.sink_sid = :s {skip_locked};

-- name: cursor_position
-- The same without the row lock (next_due only reads).
SELECT c.account_sid, c.position,
    (SELECT MAX(e.seq) FROM events e WHERE e.account_sid = c.account_sid) AS head
FROM sink_cursors c WHERE c.sink_sid = :s;

-- name: log_after
-- read by position (Tx.rows): keep this column order in step with SEQ ... RECEIVED_AT in repos/deliveries.py
SELECT seq, id, type, schema_version, payload, packed, received_at FROM events
WHERE account_sid = :a AND seq > :pos AND seq <= :head AND type IN LIST(:types) AND only_sink IS NULL
ORDER BY seq LIMIT :n;

-- name: advance_cursor
UPDATE sink_cursors SET position = :to WHERE sink_sid = :s AND position < :to;

-- name: insert_batch
INSERT INTO delivery_batches (sink_sid, account_sid, from_seq, to_seq, leased_by, lease_until)
VALUES (:s, :a, :lo, :hi, :lease, :until) RETURNING id;

-- name: retry_from_log
-- A failed event of a batch becomes a retry row, if the batch is still ours (else its new holder sends it).
INSERT INTO deliveries (sink_sid, account_sid, event_seq, attempts, window_start, due_at, last_code, last_error)
SELECT :s, :a, :q, 1, :ws, :due, :c, :e WHERE EXISTS (
    SELECT 1 FROM delivery_batches WHERE id = :b AND leased_by = :lease);

-- name: dead_from_log
INSERT INTO dead_letters (account_sid, sink_sid, event_seq, event_id, type, attempts, last_code, last_error,
    dead_at)
SELECT :a, :s, :q, :eid, :t, 1, :c, :e, :now WHERE EXISTS (
    SELECT 1 FROM delivery_batches WHERE id = :b AND leased_by = :lease);

-- name: finish_batch
DELETE FROM delivery_batches WHERE id = :b AND leased_by = :lease;

-- name: extend_batch
UPDATE delivery_batches SET lease_until = :until WHERE leased_by = :lease;

-- name: release_batches
UPDATE delivery_batches SET lease_until = 0;

-- name: next_batch_due
-- The retry table's next due time and the batches' lease expiry, in one round trip.
SELECT MIN(d) AS d FROM (
    SELECT MIN(due_at) AS d FROM deliveries WHERE sink_sid = :s
    UNION ALL
    SELECT MIN(lease_until) AS d FROM delivery_batches WHERE sink_sid = :s
) due;

-- name: log_backlog
-- Per subscribed sink: how far its cursor is behind its account's head in seq numbers (an upper bound on
-- what it has to read: other types, other accounts' seqs and sinks' tests count too) and the oldest event
-- past it; repos/deliveries.py counts short distances exactly.
SELECT c.sink_sid, c.account_sid, c.position,
    COALESCE((SELECT MAX(e.seq) FROM events e WHERE e.account_sid = c.account_sid), 0) AS head,
    COALESCE((SELECT MAX(e.seq) FROM events e WHERE e.account_sid = c.account_sid), 0) - c.position AS behind,
    (SELECT e.received_at FROM events e WHERE e.account_sid = c.account_sid AND e.seq > c.position
     ORDER BY e.seq LIMIT 1) AS oldest
FROM sink_cursors c WHERE EXISTS (SELECT 1 FROM subscriptions x WHERE x.sink_sid = c.sink_sid);

-- name: insert_delivery
INSERT INTO deliveries (sink_sid, account_sid, event_seq, due_at, window_start) VALUES (:s, :a, :q, :now, :now);

-- name: lease
UPDATE deliveries SET due_at = :until, leased_by = :lease WHERE id IN (
    SELECT id FROM deliveries WHERE sink_sid = :s AND due_at <= :now ORDER BY due_at LIMIT :n {skip_locked})
RETURNING id, sink_sid, account_sid, event_seq, attempts, window_start;

-- name: leased_events
SELECT seq, id, type, schema_version, payload, packed FROM events WHERE seq IN LIST(:seqs);

-- name: delete_leased
DELETE FROM deliveries WHERE leased_by = :lease AND id IN LIST(:ids);

-- name: retry
UPDATE deliveries SET attempts = attempts + 1, due_at = :due, leased_by = NULL, last_code = :c, last_error = :e
WHERE id = :id AND leased_by = :lease;

-- name: dead
INSERT INTO dead_letters (account_sid, sink_sid, event_seq, event_id, type, attempts, last_code, last_error,
    dead_at)
SELECT d.account_sid, d.sink_sid, d.event_seq, :eid, :t, d.attempts + 1, :c, :e, :now FROM deliveries d
WHERE d.id = :id AND d.leased_by = :lease;

-- name: delete_one_leased
DELETE FROM deliveries WHERE id = :id AND leased_by = :lease;

-- name: insert_log
INSERT INTO delivery_log (account_sid, sink_sid, at, outcome, event_count, event_ids, attempt, code, http_status,
    detail)
VALUES (:a, :s, :at, :o, :n, :ids, :att, :c, :h, :d);

-- DELETE ... RETURNING first: on PostgreSQL that locks the rows, so a worker leasing them concurrently
-- skips them instead of delivering (and dead-lettering) them a second time.
-- name: expire
DELETE FROM deliveries WHERE sink_sid = :s AND window_start < :cut AND leased_by IS NULL
RETURNING account_sid, sink_sid, event_seq, attempts, last_code, last_error;

-- name: expired_events
SELECT seq, id, type FROM events WHERE seq IN LIST(:seqs);

-- name: insert_dead
INSERT INTO dead_letters (account_sid, sink_sid, event_seq, event_id, type, attempts, last_code, last_error,
    dead_at)
VALUES (:a, :s, :q, :eid, :t, :n, :c, :e, :now);

-- name: extend_lease
UPDATE deliveries SET due_at = :until WHERE leased_by = :lease AND id IN LIST(:ids);

-- name: release_leases
UPDATE deliveries SET due_at = 0, leased_by = NULL WHERE leased_by IS NOT NULL;

-- name: release_worker_leases
-- substr, not LIKE: a host name may hold LIKE's wildcards
UPDATE deliveries SET due_at = 0, leased_by = NULL WHERE substr(leased_by, 1, length(:w)) = :w;

-- name: release_worker_batches
UPDATE delivery_batches SET lease_until = 0 WHERE substr(leased_by, 1, length(:w)) = :w;

-- name: delivery_sinks
SELECT s.sid, s.account_sid, s.description, s.sink_type, s.configuration_sealed, s.status,
    s.signing_secret_sealed, s.date_created, s.date_updated,
    EXISTS (SELECT 1 FROM subscriptions x WHERE x.sink_sid = s.sid) AS in_use
FROM sinks s
WHERE EXISTS (SELECT 1 FROM subscriptions x WHERE x.sink_sid = s.sid)
    OR EXISTS (SELECT 1 FROM deliveries d WHERE d.sink_sid = s.sid)
    OR EXISTS (SELECT 1 FROM delivery_batches b WHERE b.sink_sid = s.sid);

-- name: subscribed_versions
SELECT s.sink_sid, se.type, se.schema_version FROM subscribed_events se
JOIN subscriptions s ON s.sid = se.subscription_sid;

-- name: select_dead_letters
SELECT id, sink_sid, account_sid, event_seq FROM dead_letters;

-- name: delete_dead_letter
DELETE FROM dead_letters WHERE id = :id;

-- name: replay_events
INSERT INTO deliveries (sink_sid, account_sid, event_seq, due_at, window_start)
SELECT :s, e.account_sid, e.seq, :now, :now FROM events e;

-- name: backlog
-- What waits, for the metrics' gauges (read at most every few seconds).
SELECT COUNT(*) AS depth, COALESCE(SUM(CASE WHEN attempts > 0 THEN 1 ELSE 0 END), 0) AS retrying,
       MIN(window_start) AS oldest
FROM deliveries;
