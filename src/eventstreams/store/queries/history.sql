-- What became of deliveries: dead letters and the delivery log.

-- name: select_dead_letters
SELECT * FROM dead_letters;

-- name: select_log
SELECT * FROM delivery_log;

-- The console's reads: the live debugger (newest first, after a cursor) and the charts.
-- name: console_events
SELECT seq, id, type, received_at, payload FROM events WHERE account_sid = :a AND seq > :after
ORDER BY seq DESC LIMIT :n;

-- name: console_log
SELECT * FROM delivery_log WHERE account_sid = :a AND id > :after ORDER BY id DESC LIMIT :n;

-- name: console_log_for_event
SELECT * FROM delivery_log WHERE account_sid = :a AND at >= :since AND event_ids LIKE :pattern
ORDER BY id LIMIT 200;

-- name: console_minutes_in
SELECT received_at / 60000 AS m, COUNT(*) AS n FROM events WHERE account_sid = :a AND received_at >= :since
GROUP BY received_at / 60000;

-- name: console_minutes_out
SELECT sink_sid, at / 60000 AS m, outcome, SUM(event_count) AS n FROM delivery_log
WHERE account_sid = :a AND at >= :since GROUP BY sink_sid, at / 60000, outcome;

-- name: console_backlog
SELECT sink_sid, COUNT(*) AS n, MIN(window_start) AS oldest FROM deliveries WHERE account_sid = :a
GROUP BY sink_sid;

-- name: console_event
SELECT seq, id, type, received_at, payload FROM events WHERE account_sid = :a AND id = :id ORDER BY seq DESC LIMIT 1;
