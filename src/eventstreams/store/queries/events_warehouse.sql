-- Events warehouses (warehouse/events.py): configuration, schedule leases, load positions, and the reads
-- of what to load. Schema names are claimed in warehouse_schemas, shared with the object sources.

-- name: get
SELECT * FROM events_warehouses WHERE account_sid = :a;

-- name: request_run
UPDATE events_warehouses SET next_run_at = :now WHERE account_sid = :a AND enabled;

-- name: claim_of_schema
SELECT schema_name, account_sid, owner_sid FROM warehouse_schemas WHERE schema_name = :s {for_update};

-- name: claim_schema
INSERT INTO warehouse_schemas (schema_name, account_sid, owner_sid) VALUES (:s, :a, :o);

-- name: release_schema
DELETE FROM warehouse_schemas WHERE owner_sid = :o;

-- name: insert
INSERT INTO events_warehouses (account_sid, sid, schema_name, enabled, interval_seconds, tracking_seq, events_seq,
    rows_loaded, next_run_at, date_created, date_updated)
VALUES (:a, :sid, :s, :enabled, :interval, 0, 0, 0, :next, :now, :now);

-- name: update_config
-- A new schema starts over: its tables are empty, so everything is loaded again.
UPDATE events_warehouses SET schema_name = :s, enabled = :enabled, interval_seconds = :interval,
    next_run_at = :next, date_updated = :now,
    tracking_seq = CASE WHEN schema_name = :s THEN tracking_seq ELSE 0 END,
    events_seq = CASE WHEN schema_name = :s THEN events_seq ELSE 0 END,
    rows_loaded = CASE WHEN schema_name = :s THEN rows_loaded ELSE 0 END
WHERE account_sid = :a;

-- name: delete
DELETE FROM events_warehouses WHERE account_sid = :a;

-- name: claim_due
-- The lease condition is repeated outside the sub-select: PostgreSQL re-checks it on a row another
-- owner leased and committed meanwhile, so two owners never hold one warehouse.
UPDATE events_warehouses SET lease_owner = :o, lease_until = :until WHERE account_sid IN (
    SELECT account_sid FROM events_warehouses
    WHERE enabled AND next_run_at <= :now AND (lease_until IS NULL OR lease_until < :now)
    ORDER BY next_run_at LIMIT :n {skip_locked})
  AND enabled AND (lease_until IS NULL OR lease_until < :now)
RETURNING account_sid;

-- name: renew
UPDATE events_warehouses SET lease_until = :until WHERE account_sid = :a AND lease_owner = :o;

-- name: release
UPDATE events_warehouses SET lease_owner = NULL, lease_until = NULL, next_run_at = :next, last_error = :e,
    last_run_at = :ran, date_updated = :ran
WHERE account_sid = :a AND lease_owner = :o;

-- name: advance
-- Positions only move forward (a slower, older run cannot move them back).
UPDATE events_warehouses SET tracking_seq = :t, events_seq = :e, rows_loaded = rows_loaded + :r
WHERE account_sid = :a AND schema_name = :s AND tracking_seq <= :t AND events_seq <= :e;

-- name: tracking_after
SELECT seq, payload FROM tracking_messages
WHERE seq > :after AND account_sid = :a AND status = 'accepted' AND received_at <= :before
ORDER BY seq LIMIT :n;

-- name: events_after
-- The tracking API's own events (com.segment.tracking.*) are loaded from tracking_messages instead.
SELECT seq, id, type, received_at, payload, packed FROM events
WHERE seq > :after AND account_sid = :a AND type NOT LIKE 'com.segment.tracking.%' AND received_at <= :before_ms
ORDER BY seq LIMIT :n;
