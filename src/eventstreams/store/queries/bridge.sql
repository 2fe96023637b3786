-- Twilio callback bridge: per account, the Twilio account whose callbacks it accepts.

-- name: update
UPDATE bridge_credentials SET twilio_account_sid = :t, token_sealed = :s, date_updated = :now
WHERE account_sid = :a;

-- name: insert
INSERT INTO bridge_credentials (account_sid, twilio_account_sid, token_sealed, date_created, date_updated)
VALUES (:a, :t, :s, :now, :now)
ON CONFLICT (account_sid) DO UPDATE SET twilio_account_sid = excluded.twilio_account_sid,
    token_sealed = excluded.token_sealed, date_updated = excluded.date_updated;

-- name: get
SELECT account_sid, twilio_account_sid, token_sealed, date_created, date_updated
FROM bridge_credentials WHERE account_sid = :a;

-- name: delete
DELETE FROM bridge_credentials WHERE account_sid = :a;
