-- The tracking API's sources and messages (tracking/).

-- name: insert_source
INSERT INTO tracking_sources (sid, account_sid, name, key_hash, key_sealed, enabled, rate_limit, date_created,
    date_updated)
VALUES (:sid, :account_sid, :name, :key_hash, :key_sealed, :enabled, :rate_limit, :date_created, :date_updated);

-- name: source_by_key
SELECT * FROM tracking_sources WHERE key_hash = :key_hash;

-- name: get_source
SELECT * FROM tracking_sources WHERE account_sid = :account_sid AND sid = :sid;

-- name: source_by_name
SELECT * FROM tracking_sources WHERE account_sid = :account_sid AND name = :name;

-- name: select_sources
SELECT * FROM tracking_sources;

-- name: update_source
UPDATE tracking_sources SET name = :name, enabled = :enabled, rate_limit = :rate_limit, date_updated = :now
WHERE account_sid = :account_sid AND sid = :sid;

-- name: rotate_key
UPDATE tracking_sources SET key_hash = :key_hash, key_sealed = :key_sealed, date_updated = :now
WHERE account_sid = :account_sid AND sid = :sid;

-- name: delete_source
DELETE FROM tracking_sources WHERE account_sid = :account_sid AND sid = :sid;

-- name: claim_message_ids
-- One request's messageIds at once; an id seen within the window is not returned (a duplicate).
INSERT INTO tracking_message_ids (account_sid, message_id, seen_at)
SELECT :account_sid, value, :now FROM json_each(:ids) WHERE true
ON CONFLICT (account_sid, message_id) DO UPDATE SET seen_at = excluded.seen_at
WHERE tracking_message_ids.seen_at < :cutoff
RETURNING message_id;

-- name: select_messages
SELECT * FROM tracking_messages;
