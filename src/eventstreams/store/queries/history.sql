-- What became of deliveries: dead letters and the delivery log.

-- name: select_dead_letters
SELECT * FROM dead_letters;

-- name: select_log
SELECT * FROM delivery_log;

-- The console's reads: the live debugger (newest first, after a cursor) and the charts.
-- name: console_events
SELECT seq, id, type, received_at, payload, packed FROM events WHERE account_sid = :a AND seq > :after
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
-- Retry rows, plus each cursor's distance to its account's head (an upper bound, as in deliveries.sql).
SELECT sink_sid, SUM(n) AS n, MIN(oldest) AS oldest FROM (
    SELECT sink_sid, COUNT(*) AS n, MIN(window_start) AS oldest FROM deliveries WHERE account_sid = :a
    GROUP BY sink_sid
    UNION ALL
    SELECT c.sink_sid, COALESCE((SELECT MAX(e.seq) FROM events e WHERE e.account_sid = c.account_sid), 0) - c.position,
        (SELECT e.received_at FROM events e WHERE e.account_sid = c.account_sid AND e.seq > c.position
         ORDER BY e.seq LIMIT 1)
    FROM sink_cursors c WHERE c.account_sid = :a
        AND EXISTS (SELECT 1 FROM subscriptions x WHERE x.sink_sid = c.sink_sid)
) w GROUP BY sink_sid HAVING SUM(n) > 0;

-- name: console_event
SELECT seq, id, type, received_at, payload, packed FROM events WHERE account_sid = :a AND id = :id ORDER BY seq DESC LIMIT 1;
