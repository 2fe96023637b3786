-- The twilio-sms sink's ledger (the rules: sinks/twilio_sms/sender.py, bridge/sms.py): claims, answers, status
-- callbacks; and its opt-outs by number.

-- name: get
SELECT * FROM sms_messages
WHERE account_sid = :account_sid AND sink_sid = :sink_sid AND message_id = :message_id AND recipient = :recipient;

-- name: count_recent
SELECT COUNT(*) AS n FROM sms_messages
WHERE account_sid = :account_sid AND sink_sid = :sink_sid AND rate_key = :rate_key AND claimed_ms >= :since
    AND status <> 'rejected';

-- name: insert
INSERT INTO sms_messages (account_sid, sink_sid, message_id, recipient, event_id, profile_id, user_id, anonymous_id,
    rate_key, message_sid, status, error_code, claimed_ms, date_created, date_updated)
VALUES (:account_sid, :sink_sid, :message_id, :recipient, :event_id, :profile_id, :user_id, :anonymous_id,
    :rate_key, NULL, 'claimed', NULL, :claimed_ms, :now, :now)
ON CONFLICT DO NOTHING;

-- name: reclaim
UPDATE sms_messages SET status = 'claimed', error_code = NULL, claimed_ms = :claimed_ms, event_id = :event_id,
    profile_id = :profile_id, user_id = :user_id, anonymous_id = :anonymous_id, rate_key = :rate_key,
    date_updated = :now
WHERE account_sid = :account_sid AND sink_sid = :sink_sid AND message_id = :message_id AND recipient = :recipient
    AND status = 'rejected' AND message_sid IS NULL;

-- name: sent
-- a status callback that overtook Twilio's answer may have recorded the SID and a later status already
UPDATE sms_messages SET status = CASE WHEN message_sid IS NULL THEN :status ELSE status END,
    message_sid = :message_sid, date_updated = :now
WHERE account_sid = :account_sid AND sink_sid = :sink_sid AND message_id = :message_id AND recipient = :recipient;

-- name: pending_for
SELECT * FROM sms_messages
WHERE account_sid = :account_sid AND sink_sid = :sink_sid AND recipient = :recipient AND message_sid IS NULL
    AND status = 'claimed' AND claimed_ms >= :since
LIMIT 2;

-- name: rejected
UPDATE sms_messages SET status = 'rejected', error_code = :error_code, date_updated = :now
WHERE account_sid = :account_sid AND sink_sid = :sink_sid AND message_id = :message_id AND recipient = :recipient
    AND message_sid IS NULL;

-- name: release
DELETE FROM sms_messages
WHERE account_sid = :account_sid AND sink_sid = :sink_sid AND message_id = :message_id AND recipient = :recipient
    AND message_sid IS NULL AND status = 'claimed';

-- name: by_message_sid
SELECT * FROM sms_messages WHERE account_sid = :account_sid AND message_sid = :message_sid;

-- name: set_status
-- only forward: :earlier are the statuses :status may replace (bridge/sms.py), so a late callback does not
-- move a row back
UPDATE sms_messages SET status = :status, error_code = :error_code, date_updated = :now
WHERE account_sid = :account_sid AND message_sid = :message_sid AND status IN LIST(:earlier);

-- name: opt_out
-- the first record stays (its date and source: when and how the number opted out)
INSERT INTO sms_opt_outs (account_sid, phone, source, date_created)
VALUES (:account_sid, :phone, :source, :now)
ON CONFLICT DO NOTHING;

-- name: opt_in
DELETE FROM sms_opt_outs WHERE account_sid = :account_sid AND phone = :phone;

-- name: opted_out
SELECT * FROM sms_opt_outs WHERE account_sid = :account_sid AND phone = :phone;
