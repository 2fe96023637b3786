-- Accounts (Twilio's 2010 Accounts) and their API keys.

-- name: insert
INSERT INTO accounts (sid, parent_sid, friendly_name, status, token_hash, token_sealed, date_created, date_updated)
VALUES (:sid, :parent_sid, :friendly_name, :status, :token_hash, :token_sealed, :date_created, :date_updated);

-- name: any
SELECT sid FROM accounts LIMIT 1;

-- name: get
SELECT * FROM accounts WHERE sid = :sid;

-- name: count
SELECT COUNT(*) AS n FROM accounts;

-- name: first
SELECT * FROM accounts WHERE parent_sid IS NULL ORDER BY date_created, sid LIMIT 1;

-- name: select
SELECT * FROM accounts;

-- name: update
UPDATE accounts SET friendly_name = COALESCE(:fn, friendly_name), status = COALESCE(:st, status),
    date_updated = :now
WHERE sid = :sid;

-- name: set_token
UPDATE accounts SET token_hash = :h, token_sealed = :s WHERE sid = :sid;

-- name: insert_key
INSERT INTO api_keys (sid, account_sid, friendly_name, secret_hash, date_created, date_updated)
VALUES (:sid, :account_sid, :friendly_name, :secret_hash, :date_created, :date_updated);

-- name: get_key
SELECT * FROM api_keys WHERE sid = :sid;

-- name: select_keys
SELECT * FROM api_keys;

-- name: update_key
UPDATE api_keys SET friendly_name = :fn, date_updated = :now WHERE sid = :sid;

-- name: delete_key
DELETE FROM api_keys WHERE sid = :sid;

-- name: count_subaccounts
SELECT COUNT(*) AS n FROM accounts WHERE parent_sid = :o;

-- name: count_keys
SELECT COUNT(*) AS n FROM api_keys WHERE account_sid = :o;
