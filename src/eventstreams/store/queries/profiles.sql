-- Profiles and identity resolution (profiles/).

-- name: lock
-- Serialises resolution per account (one writer on SQLite already; postgres/profiles.sql takes an advisory lock).
SELECT 1 AS locked;

-- name: identifiers_by_value
SELECT value, id_type, profile_id FROM profile_identifiers WHERE account_sid = :a AND value IN LIST(:values);

-- name: profiles_by_id
SELECT * FROM profiles WHERE account_sid = :a AND id IN LIST(:ids);

-- name: identifier_counts
SELECT profile_id, id_type, COUNT(*) AS n FROM profile_identifiers
WHERE account_sid = :a AND profile_id IN LIST(:ids) GROUP BY profile_id, id_type;

-- name: insert_profile
INSERT INTO profiles (account_sid, id, merged_into, traits, trait_times, phone, phone_valid, opted_out, date_created,
    date_updated)
VALUES (:account_sid, :id, :merged_into, :traits, :trait_times, :phone, :phone_valid, :opted_out, :date_created,
    :date_updated);

-- name: update_profile
UPDATE profiles SET merged_into = :merged_into, traits = :traits, trait_times = :trait_times, phone = :phone,
    phone_valid = :phone_valid, opted_out = :opted_out, date_updated = :date_updated
WHERE account_sid = :account_sid AND id = :id;

-- name: repoint_merged
UPDATE profiles SET merged_into = :winner WHERE account_sid = :a AND merged_into = :loser;

-- name: move_identifiers
UPDATE profile_identifiers SET profile_id = :winner WHERE account_sid = :a AND profile_id = :loser;

-- name: move_events
UPDATE profile_events SET profile_id = :winner WHERE account_sid = :a AND profile_id = :loser;

-- name: insert_identifier
INSERT INTO profile_identifiers (account_sid, value, id_type, profile_id, first_message_id, date_first_seen)
VALUES (:account_sid, :value, :id_type, :profile_id, :first_message_id, :date_first_seen);

-- name: insert_event
INSERT INTO profile_events (account_sid, seq, profile_id, message_id, type, name, timestamp)
VALUES (:account_sid, :seq, :profile_id, :message_id, :type, :name, :timestamp);

-- name: insert_merge
INSERT INTO profile_merges (account_sid, id, winner, loser, id_type, id_value, status, reason, message_id,
    date_created)
VALUES (:account_sid, :id, :winner, :loser, :id_type, :id_value, :status, :reason, :message_id, :date_created);

-- name: identifier
SELECT profile_id FROM profile_identifiers WHERE account_sid = :a AND value = :value AND id_type = :id_type;

-- name: profile
SELECT * FROM profiles WHERE account_sid = :a AND id = :id;

-- name: select_identifiers
SELECT * FROM profile_identifiers;

-- name: select_events
-- The account too: a profile event must never show another account's message through a reused seq.
SELECT e.seq, e.message_id, e.type, e.name, e.timestamp, m.source_sid, m.payload
FROM profile_events e LEFT JOIN tracking_messages m ON m.seq = e.seq AND m.account_sid = e.account_sid;

-- name: select_merges
SELECT * FROM profile_merges;

-- name: absorbed
SELECT id FROM profiles WHERE account_sid = :a AND merged_into = :id;

-- name: groups
SELECT name, MIN(timestamp) AS first_seen FROM profile_events
WHERE account_sid = :a AND profile_id = :id AND type = 'group' AND name IS NOT NULL
GROUP BY name ORDER BY name LIMIT :lim;

-- name: set_opted_out
UPDATE profiles SET opted_out = :opted_out, date_updated = :now
WHERE account_sid = :a AND merged_into IS NULL AND id IN (
    SELECT profile_id FROM profile_identifiers WHERE account_sid = :a AND value = :phone AND id_type = 'phone');
