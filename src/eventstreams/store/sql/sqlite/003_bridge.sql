-- Twilio callback bridge: per account, the Twilio account whose callbacks it accepts and that
-- account's auth token (Fernet-sealed), used to check X-Twilio-Signature.
CREATE TABLE bridge_credentials (
    account_sid TEXT PRIMARY KEY REFERENCES accounts(sid) ON DELETE CASCADE,
    twilio_account_sid TEXT NOT NULL,
    token_sealed TEXT NOT NULL,
    date_created TEXT NOT NULL,
    date_updated TEXT NOT NULL
);
