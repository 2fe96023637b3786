-- Sinks, their test events, subscriptions and subscribed event types.

-- name: select_sinks
SELECT s.sid, s.account_sid, s.description, s.sink_type, s.configuration_sealed, s.status,
    s.signing_secret_sealed, s.date_created, s.date_updated,
    EXISTS (SELECT 1 FROM subscriptions x WHERE x.sink_sid = s.sid) AS in_use
FROM sinks s;

-- name: get_sink
SELECT s.sid, s.account_sid, s.description, s.sink_type, s.configuration_sealed, s.status,
    s.signing_secret_sealed, s.date_created, s.date_updated,
    EXISTS (SELECT 1 FROM subscriptions x WHERE x.sink_sid = s.sid) AS in_use
FROM sinks s WHERE s.sid = :sid AND s.account_sid = :a;

-- name: count_sinks
SELECT COUNT(*) AS n FROM sinks WHERE account_sid = :a;

-- name: insert_sink
INSERT INTO sinks (sid, account_sid, description, sink_type, configuration_sealed, status,
    signing_secret_sealed, date_created, date_updated)
VALUES (:sid, :account_sid, :description, :sink_type, :configuration_sealed, :status, :signing_secret_sealed,
    :date_created, :date_updated);

-- name: update_sink
UPDATE sinks SET description = :d, date_updated = :now WHERE sid = :sid AND account_sid = :a;

-- name: sink_in_use
SELECT 1 AS x FROM subscriptions WHERE sink_sid = :sid AND account_sid = :a;

-- name: delete_sink_tests
DELETE FROM sink_tests WHERE sink_sid = :sid;

-- name: delete_sink
DELETE FROM sinks WHERE sid = :sid AND account_sid = :a;

-- name: insert_test
INSERT INTO sink_tests (test_id, sink_sid, date_created) VALUES (:t, :s, :now);

-- name: test_exists
SELECT 1 AS x FROM sink_tests WHERE test_id = :t AND sink_sid = :s;

-- name: count_subscriptions
SELECT COUNT(*) AS n FROM subscriptions WHERE account_sid = :a;

-- name: sink_subscribed
SELECT 1 AS x FROM subscriptions WHERE sink_sid = :s;

-- name: insert_subscription
INSERT INTO subscriptions (sid, account_sid, sink_sid, description, date_created, date_updated)
VALUES (:sid, :account_sid, :sink_sid, :description, :date_created, :date_updated);

-- name: insert_subscribed
-- from_seq: the log's head; the type is delivered from the next event on (deliveries.sql, sink_types).
INSERT INTO subscribed_events (subscription_sid, type, schema_version, account_sid, from_seq)
VALUES (:subscription_sid, :type, :schema_version, :account_sid, (SELECT COALESCE(MAX(seq), 0) FROM events));

-- name: open_cursor
INSERT INTO sink_cursors (sink_sid, account_sid, position)
VALUES (:s, :a, (SELECT COALESCE(MAX(seq), 0) FROM events)) ON CONFLICT (sink_sid) DO NOTHING;

-- name: reset_cursor
-- A sink's first subscription reads from the head, not from where a deleted one left off.
UPDATE sink_cursors SET position = (SELECT COALESCE(MAX(seq), 0) FROM events) WHERE sink_sid = :s;

-- name: delete_cursor
DELETE FROM sink_cursors WHERE sink_sid = :sid;

-- name: delete_batches
DELETE FROM delivery_batches WHERE sink_sid = :sid;

-- name: get_subscription
SELECT * FROM subscriptions WHERE sid = :sid AND account_sid = :a;

-- name: select_subscriptions
SELECT * FROM subscriptions;

-- name: update_subscription
UPDATE subscriptions SET description = :d, date_updated = :now WHERE sid = :sid AND account_sid = :a;

-- name: delete_subscription_types
DELETE FROM subscribed_events WHERE subscription_sid = :sid AND account_sid = :a;

-- name: delete_subscription
DELETE FROM subscriptions WHERE sid = :sid AND account_sid = :a;

-- name: select_subscribed
SELECT subscription_sid, type, schema_version, account_sid FROM subscribed_events;

-- name: get_subscribed
SELECT subscription_sid, type, schema_version, account_sid FROM subscribed_events
WHERE subscription_sid = :s AND type = :t;

-- name: touch_subscription
UPDATE subscriptions SET date_updated = :now WHERE sid = :s;

-- name: update_subscribed
UPDATE subscribed_events SET schema_version = :v WHERE subscription_sid = :s AND type = :t;

-- name: count_subscribed
SELECT COUNT(*) AS n FROM subscribed_events WHERE subscription_sid = :s;

-- name: delete_subscribed
DELETE FROM subscribed_events WHERE subscription_sid = :s AND type = :t;
