-- The Twilio object source (objectsource/): sources, where each collection stands, and runs.

-- name: claim_schema
-- A name nobody holds, or one a deleted source of the same account left: no row changed means taken.
INSERT INTO warehouse_schemas (schema_name, account_sid, owner_sid) VALUES (:schema_name, :account_sid, :owner_sid)
ON CONFLICT (schema_name) DO UPDATE SET owner_sid = excluded.owner_sid
WHERE warehouse_schemas.account_sid = excluded.account_sid AND warehouse_schemas.owner_sid LIKE 'released:%';

-- name: release_schema
-- The tables stay in the warehouse, so the name stays with the account.
UPDATE warehouse_schemas SET owner_sid = 'released:' || owner_sid WHERE owner_sid = :owner_sid;

-- name: insert_source
INSERT INTO object_sources (sid, account_sid, friendly_name, schema_name, twilio_account_sid, key_sid, secret_sealed,
    base_url, start_date, collections, schedule, lookback_seconds, include_subaccounts, enabled, full_sync_requested,
    full_requested_at, next_run_at, lease_owner, lease_until, last_error, date_created, date_updated)
VALUES (:sid, :account_sid, :friendly_name, :schema_name, :twilio_account_sid, :key_sid, :secret_sealed, :base_url,
    :start_date, :collections, :schedule, :lookback_seconds, :include_subaccounts, :enabled, :full_sync_requested,
    :full_requested_at, :next_run_at, :lease_owner, :lease_until, :last_error, :date_created, :date_updated);

-- name: update_source
UPDATE object_sources SET friendly_name = :friendly_name, schema_name = :schema_name,
    twilio_account_sid = :twilio_account_sid, key_sid = :key_sid, secret_sealed = :secret_sealed, base_url = :base_url,
    start_date = :start_date, collections = :collections, schedule = :schedule, lookback_seconds = :lookback_seconds,
    include_subaccounts = :include_subaccounts, enabled = :enabled,
    full_sync_requested = full_sync_requested OR :full,
    full_requested_at = CASE WHEN :full THEN :now ELSE full_requested_at END,
    next_run_at = CASE WHEN :reschedule THEN :next_run_at ELSE next_run_at END, date_updated = :date_updated
WHERE account_sid = :account_sid AND sid = :sid;

-- name: get_source
SELECT * FROM object_sources WHERE account_sid = :account_sid AND sid = :sid;

-- name: source_by_sid
SELECT * FROM object_sources WHERE sid = :sid;

-- name: source_by_name
SELECT * FROM object_sources WHERE account_sid = :account_sid AND friendly_name = :friendly_name;

-- name: select_sources
SELECT * FROM object_sources;

-- name: delete_source
DELETE FROM object_sources WHERE account_sid = :account_sid AND sid = :sid;

-- Leases. A source is synced by one process at a time: the one whose lease_until is in the future.
-- due: enabled, its time has come, nobody holds it. PostgreSQL skips rows another process is claiming.

-- name: due_sources
SELECT sid FROM object_sources
WHERE enabled AND next_run_at <= :now AND (lease_until IS NULL OR lease_until < :now)
ORDER BY next_run_at LIMIT :n {skip_locked};

-- name: take_lease
UPDATE object_sources SET lease_owner = :owner, lease_until = :until
WHERE sid = :sid AND (lease_until IS NULL OR lease_until < :now OR lease_owner = :owner);

-- name: renew_lease
UPDATE object_sources SET lease_until = :until WHERE sid = :sid AND lease_owner = :owner;

-- name: release_lease
-- What was asked while the run went on stays asked: a "sync now" (next_run_at moved past the run's start)
-- and a full sync requested after it started.
UPDATE object_sources SET lease_owner = NULL, lease_until = NULL,
    next_run_at = CASE WHEN next_run_at > :started THEN next_run_at ELSE :next_run_at END,
    last_error = :last_error,
    full_sync_requested = CASE WHEN :full_done AND (full_requested_at IS NULL OR full_requested_at <= :started)
        THEN FALSE ELSE full_sync_requested END
WHERE sid = :sid AND lease_owner = :owner;

-- name: request_run
UPDATE object_sources SET next_run_at = :now, full_sync_requested = full_sync_requested OR :full,
    full_requested_at = CASE WHEN :full THEN :now ELSE full_requested_at END
WHERE account_sid = :account_sid AND sid = :sid;

-- name: select_state
SELECT * FROM object_source_state WHERE source_sid = :source_sid;

-- name: put_state
INSERT INTO object_source_state (source_sid, twilio_account_sid, collection, cursor, resume_uri, pass_kind,
    pass_cursor, pass_lower, date_updated)
VALUES (:source_sid, :twilio_account_sid, :collection, :cursor, :resume_uri, :pass_kind, :pass_cursor,
    :pass_lower, :date_updated)
ON CONFLICT (source_sid, twilio_account_sid, collection) DO UPDATE SET cursor = excluded.cursor,
    resume_uri = excluded.resume_uri, pass_kind = excluded.pass_kind, pass_cursor = excluded.pass_cursor,
    pass_lower = excluded.pass_lower, date_updated = excluded.date_updated;

-- name: clear_state
DELETE FROM object_source_state WHERE source_sid = :source_sid;

-- name: clear_passes
-- Unfinished passes were read for another start date: they start over (the cursors stay).
UPDATE object_source_state SET resume_uri = NULL, pass_kind = NULL, pass_cursor = NULL, pass_lower = NULL
WHERE source_sid = :source_sid;

-- name: insert_run
INSERT INTO object_source_runs (sid, account_sid, source_sid, kind, trigger, status, error, date_started,
    date_finished)
VALUES (:sid, :account_sid, :source_sid, :kind, :trigger, :status, :error, :date_started, :date_finished);

-- name: finish_run
UPDATE object_source_runs SET status = :status, error = :error, date_finished = :date_finished WHERE sid = :sid;

-- name: abandon_runs
-- Runs a dead process left "running" (its lease expired before this one was taken).
UPDATE object_source_runs SET status = 'interrupted', date_finished = :now
WHERE source_sid = :source_sid AND status = 'running' AND sid <> :keep;

-- name: put_run_collection
INSERT INTO object_source_run_collections (run_sid, twilio_account_sid, collection, status, rows_read,
    rows_upserted, duration, cursor, error)
VALUES (:run_sid, :twilio_account_sid, :collection, :status, :rows_read, :rows_upserted, :duration, :cursor, :error)
ON CONFLICT (run_sid, twilio_account_sid, collection) DO UPDATE SET status = excluded.status,
    rows_read = excluded.rows_read, rows_upserted = excluded.rows_upserted, duration = excluded.duration,
    cursor = excluded.cursor, error = excluded.error;

-- name: select_runs
SELECT * FROM object_source_runs;

-- name: get_run
SELECT * FROM object_source_runs WHERE source_sid = :source_sid AND sid = :sid;

-- name: run_collections
SELECT * FROM object_source_run_collections WHERE run_sid IN LIST(:runs) ORDER BY twilio_account_sid, collection;
