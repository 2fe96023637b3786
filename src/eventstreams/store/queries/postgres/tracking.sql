-- PostgreSQL's forms of tracking.sql statements that differ.

-- name: claim_message_ids
INSERT INTO tracking_message_ids (account_sid, message_id, seen_at)
SELECT :account_sid, u, :now FROM unnest(:ids::text[]) AS u
ON CONFLICT (account_sid, message_id) DO UPDATE SET seen_at = excluded.seen_at
WHERE tracking_message_ids.seen_at < :cutoff
RETURNING message_id;
