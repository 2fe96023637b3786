-- Profiles and identity resolution (profiles/): every accepted tracking message resolves into one profile.
-- A merged profile keeps its row (merged_into names the survivor); its identifiers and events move to the
-- survivor, so lookups never follow chains.
CREATE TABLE profiles (
    account_sid TEXT NOT NULL REFERENCES accounts(sid) ON DELETE CASCADE,
    id TEXT NOT NULL,
    merged_into TEXT,
    traits TEXT NOT NULL,
    trait_times TEXT NOT NULL,
    phone TEXT,
    phone_valid BOOLEAN NOT NULL,
    opted_out BOOLEAN NOT NULL,
    date_created TEXT NOT NULL,
    date_updated TEXT NOT NULL,
    PRIMARY KEY (account_sid, id)
);
CREATE INDEX profiles_merged_into ON profiles(account_sid, merged_into);

-- One row per identifier value: unique in the account, owned by one (surviving) profile.
CREATE TABLE profile_identifiers (
    account_sid TEXT NOT NULL,
    value TEXT NOT NULL,
    id_type TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    first_message_id TEXT NOT NULL,
    date_first_seen TEXT NOT NULL,
    PRIMARY KEY (account_sid, value, id_type)
);
CREATE INDEX profile_identifiers_profile ON profile_identifiers(account_sid, profile_id, id_type);

-- The messages a profile saw (seq: tracking_messages.seq; the payload stays there).
CREATE TABLE profile_events (
    account_sid TEXT NOT NULL,
    seq BIGINT NOT NULL,
    profile_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    type TEXT NOT NULL,
    name TEXT,
    timestamp TEXT NOT NULL,
    PRIMARY KEY (account_sid, seq)
);
CREATE INDEX profile_events_profile ON profile_events(account_sid, profile_id, seq);

-- Every merge, and every merge refused by an identifier limit (status 'refused': the identifier was not attached).
CREATE TABLE profile_merges (
    account_sid TEXT NOT NULL,
    id TEXT NOT NULL,
    winner TEXT NOT NULL,
    loser TEXT,
    id_type TEXT NOT NULL,
    id_value TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT,
    message_id TEXT NOT NULL,
    date_created TEXT NOT NULL,
    PRIMARY KEY (account_sid, id)
);
CREATE INDEX profile_merges_winner ON profile_merges(account_sid, winner);
CREATE INDEX profile_merges_loser ON profile_merges(account_sid, loser);
