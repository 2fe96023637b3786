-- Retention: what is deleted once it is older than its window. The delivery log is kept for the log
-- window; its error entries (failed, dead) are the error log and stay for the error window, like
-- Twilio's 7 and 23 days.

-- name: log
DELETE FROM delivery_log WHERE at < :t AND outcome IN ('delivered', 'skipped');

-- name: error_log
DELETE FROM delivery_log WHERE at < :t AND outcome NOT IN ('delivered', 'skipped');

-- name: alerts
DELETE FROM alerts WHERE created_at < :t;

-- name: dead_letters
DELETE FROM dead_letters WHERE dead_at < :t;

-- name: event_ids
DELETE FROM event_ids WHERE received_at < :t;

-- name: events
DELETE FROM events WHERE received_at < :t
    AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_seq = events.seq)
    AND NOT EXISTS (SELECT 1 FROM dead_letters x WHERE x.event_seq = events.seq)
    -- nor what a subscribed sink's cursor has yet to read, or a batch is sending
    AND NOT EXISTS (SELECT 1 FROM sink_cursors c WHERE c.account_sid = events.account_sid AND c.position < events.seq
                    AND EXISTS (SELECT 1 FROM subscriptions s WHERE s.sink_sid = c.sink_sid))
    AND NOT EXISTS (SELECT 1 FROM delivery_batches b WHERE b.account_sid = events.account_sid
                    AND events.seq > b.from_seq AND events.seq <= b.to_seq);

-- name: sms_ledger
-- the twilio-sms ledger lives as long as the events and dead letters it could be replayed from (and at least
-- the rate window): repos/retention.py. Never while its event is still stored: a dead letter keeps its event
-- (and a replayed dead letter that ends "unknown outcome" again is a new, younger dead letter).
DELETE FROM sms_messages WHERE claimed_ms < :t
    AND NOT EXISTS (SELECT 1 FROM events e WHERE e.account_sid = sms_messages.account_sid AND e.id = sms_messages.event_id);
