-- Opt-outs of the twilio-sms sink, per account and E.164 number (store.sms): an inbound STOP (bridge/sms.py)
-- or Twilio's 21610 answer (the recipient unsubscribed). The sender checks the final recipient against it,
-- whatever the number came from (the profile, properties.phone, context.traits.phone, a mapping's to), so a
-- STOP holds even for a number no profile holds. An inbound START deletes the row. Never pruned: consent.
CREATE TABLE sms_opt_outs (
    account_sid TEXT NOT NULL REFERENCES accounts(sid) ON DELETE CASCADE,
    phone TEXT NOT NULL,
    source TEXT NOT NULL,
    date_created TEXT NOT NULL,
    PRIMARY KEY (account_sid, phone)
);

-- STOPs recorded before this table existed live only as the profiles' flag: every phone such a profile holds.
INSERT INTO sms_opt_outs (account_sid, phone, source, date_created)
SELECT i.account_sid, i.value, 'inbound', MAX(p.date_updated)
FROM profiles p
JOIN profile_identifiers i ON i.account_sid = p.account_sid AND i.profile_id = p.id AND i.id_type = 'phone'
WHERE p.opted_out AND p.merged_into IS NULL AND i.value LIKE '+%'
GROUP BY i.account_sid, i.value;
