-- The Twilio sandbox's resources (sandbox/). Lists are built by store/db.keyset on the select_* statements.

-- name: insert_message
INSERT INTO sandbox_messages (sid, account_sid, messaging_service_sid, direction, from_number, to_number, body, status, num_segments, num_media, price, price_unit, error_code, error_message, status_callback, outcome, next_step_at, date_created, date_updated, date_sent)
VALUES (:sid, :account_sid, :messaging_service_sid, :direction, :from_number, :to_number, :body, :status, :num_segments, :num_media, :price, :price_unit, :error_code, :error_message, :status_callback, :outcome, :next_step_at, :date_created, :date_updated, :date_sent);

-- name: get_message
SELECT * FROM sandbox_messages WHERE account_sid = :account_sid AND sid = :sid;

-- name: delete_message
DELETE FROM sandbox_messages WHERE account_sid = :account_sid AND sid = :sid;

-- name: select_message
SELECT * FROM sandbox_messages;

-- name: insert_call
INSERT INTO sandbox_calls (sid, account_sid, parent_call_sid, to_number, to_formatted, from_number, from_formatted, phone_number_sid, status, start_time, end_time, duration, price, price_unit, direction, answered_by, forwarded_from, group_sid, caller_name, queue_time, trunk_sid, status_callback, status_callback_events, outcome, next_step_at, date_created, date_updated)
VALUES (:sid, :account_sid, :parent_call_sid, :to_number, :to_formatted, :from_number, :from_formatted, :phone_number_sid, :status, :start_time, :end_time, :duration, :price, :price_unit, :direction, :answered_by, :forwarded_from, :group_sid, :caller_name, :queue_time, :trunk_sid, :status_callback, :status_callback_events, :outcome, :next_step_at, :date_created, :date_updated);

-- name: get_call
SELECT * FROM sandbox_calls WHERE account_sid = :account_sid AND sid = :sid;

-- name: delete_call
DELETE FROM sandbox_calls WHERE account_sid = :account_sid AND sid = :sid;

-- name: select_call
SELECT * FROM sandbox_calls;

-- name: insert_feedback
INSERT INTO sandbox_call_feedback (call_sid, account_sid, quality_score, issues, date_created, date_updated)
VALUES (:call_sid, :account_sid, :quality_score, :issues, :date_created, :date_updated);

-- name: get_feedback
SELECT * FROM sandbox_call_feedback WHERE account_sid = :account_sid AND call_sid = :sid;

-- name: insert_conference
INSERT INTO sandbox_conferences (sid, account_sid, friendly_name, region, status, reason_conference_ended, call_sid_ending_conference, date_created, date_updated)
VALUES (:sid, :account_sid, :friendly_name, :region, :status, :reason_conference_ended, :call_sid_ending_conference, :date_created, :date_updated);

-- name: get_conference
SELECT * FROM sandbox_conferences WHERE account_sid = :account_sid AND sid = :sid;

-- name: select_conference
SELECT * FROM sandbox_conferences;

-- name: insert_transcription
INSERT INTO sandbox_transcriptions (sid, account_sid, recording_sid, status, transcription_text, type, duration, price, price_unit, date_created, date_updated)
VALUES (:sid, :account_sid, :recording_sid, :status, :transcription_text, :type, :duration, :price, :price_unit, :date_created, :date_updated);

-- name: get_transcription
SELECT * FROM sandbox_transcriptions WHERE account_sid = :account_sid AND sid = :sid;

-- name: delete_transcription
DELETE FROM sandbox_transcriptions WHERE account_sid = :account_sid AND sid = :sid;

-- name: select_transcription
SELECT * FROM sandbox_transcriptions;

-- name: insert_address
INSERT INTO sandbox_addresses (sid, account_sid, customer_name, friendly_name, street, street_secondary, city, region, postal_code, iso_country, emergency_enabled, validated, verified, date_created, date_updated)
VALUES (:sid, :account_sid, :customer_name, :friendly_name, :street, :street_secondary, :city, :region, :postal_code, :iso_country, :emergency_enabled, :validated, :verified, :date_created, :date_updated);

-- name: get_address
SELECT * FROM sandbox_addresses WHERE account_sid = :account_sid AND sid = :sid;

-- name: delete_address
DELETE FROM sandbox_addresses WHERE account_sid = :account_sid AND sid = :sid;

-- name: select_address
SELECT * FROM sandbox_addresses;

-- name: redact_message
UPDATE sandbox_messages SET body = '', date_updated = :now WHERE account_sid = :account_sid AND sid = :sid;

-- name: upsert_feedback
INSERT INTO sandbox_call_feedback (call_sid, account_sid, quality_score, issues, date_created, date_updated)
VALUES (:call_sid, :account_sid, :quality_score, :issues, :date_created, :date_updated)
ON CONFLICT (call_sid) DO UPDATE SET quality_score = excluded.quality_score, issues = excluded.issues,
    date_updated = excluded.date_updated;

-- name: get_settings
SELECT document FROM sandbox_settings WHERE account_sid = :account_sid;

-- name: put_settings
INSERT INTO sandbox_settings (account_sid, document, date_updated) VALUES (:account_sid, :document, :now)
ON CONFLICT (account_sid) DO UPDATE SET document = excluded.document, date_updated = excluded.date_updated;

-- status clock (sandbox/lifecycle.py). A due row is claimed by moving it to its next status with
-- next_step_at set to a lease; the step's callbacks and events then run outside the transaction and
-- release_* sets the real next time, only while the lease is still this process's (a process that
-- outlived its lease must not overwrite another's progress). PostgreSQL: SKIP LOCKED, so two
-- processes never claim the same row at once; SQLite's single writer serialises claims.

-- name: due_message
SELECT * FROM sandbox_messages WHERE next_step_at <= :now ORDER BY next_step_at LIMIT :n {skip_locked};

-- name: step_message
UPDATE sandbox_messages SET status = :status, price = :price, error_code = :error_code,
    error_message = :error_message, next_step_at = :next_step_at, date_updated = :date_updated,
    date_sent = :date_sent
WHERE sid = :sid;

-- name: release_message
UPDATE sandbox_messages SET next_step_at = :next WHERE sid = :sid AND next_step_at = :lease;

-- name: next_due_message
SELECT MIN(next_step_at) AS due FROM sandbox_messages WHERE next_step_at IS NOT NULL;

-- name: due_call
SELECT * FROM sandbox_calls WHERE next_step_at <= :now ORDER BY next_step_at LIMIT :n {skip_locked};

-- name: step_call
UPDATE sandbox_calls SET status = :status, start_time = :start_time, end_time = :end_time, duration = :duration,
    price = :price, next_step_at = :next_step_at, date_updated = :date_updated
WHERE sid = :sid;

-- name: release_call
UPDATE sandbox_calls SET next_step_at = :next WHERE sid = :sid AND next_step_at = :lease;

-- name: next_due_call
SELECT MIN(next_step_at) AS due FROM sandbox_calls WHERE next_step_at IS NOT NULL;

-- The seeder's guard against repeating a run: is this SID taken (by any account)?
-- name: exists_message
SELECT sid FROM sandbox_messages WHERE sid = :sid;

-- name: exists_call
SELECT sid FROM sandbox_calls WHERE sid = :sid;

-- name: exists_conference
SELECT sid FROM sandbox_conferences WHERE sid = :sid;

-- name: exists_transcription
SELECT sid FROM sandbox_transcriptions WHERE sid = :sid;

-- name: exists_address
SELECT sid FROM sandbox_addresses WHERE sid = :sid;
