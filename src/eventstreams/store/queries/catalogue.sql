-- Event types and schema versions. owner_sid '' marks a built-in (shipped with the package); otherwise
-- the account that registered it. Names are unique per owner (owner_sid, type), and an account sees
-- the built-ins and its own: owner_sid IN ('', :o), two probes of the primary key.

-- name: sync_version
INSERT INTO schema_versions (schema_id, version, owner_sid, document, date_created)
VALUES (:schema_id, :version, '', :document, :date_created)
ON CONFLICT (owner_sid, schema_id, version) DO UPDATE SET document = excluded.document,
    date_created = excluded.date_created;

-- name: sync_type
INSERT INTO event_types (type, schema_id, owner_sid, description, status, documentation_url,
    segment_compatible, date_created, date_updated)
VALUES (:type, :schema_id, '', :description, :status, :documentation_url, :segment_compatible,
    :date_created, :date_updated)
ON CONFLICT (owner_sid, type) DO UPDATE SET schema_id = excluded.schema_id, description = excluded.description,
    status = excluded.status, documentation_url = excluded.documentation_url,
    segment_compatible = excluded.segment_compatible, date_updated = excluded.date_updated;

-- name: select_types
SELECT type, schema_id, owner_sid, description, status, documentation_url, segment_compatible, date_created,
    date_updated
FROM event_types;

-- name: get_type
SELECT type, schema_id, owner_sid, description, status, documentation_url, segment_compatible, date_created,
    date_updated
FROM event_types WHERE type = :t AND owner_sid IN ('', :o);

-- name: builtin_type
SELECT 1 AS x FROM event_types WHERE owner_sid = '' AND type = :t;

-- name: put_type
INSERT INTO event_types (type, schema_id, owner_sid, description, status, documentation_url,
    segment_compatible, date_created, date_updated)
VALUES (:type, :schema_id, :owner_sid, :description, :status, :documentation_url, :segment_compatible,
    :date_created, :date_updated)
ON CONFLICT (owner_sid, type) DO UPDATE SET schema_id = excluded.schema_id, description = excluded.description,
    status = excluded.status, documentation_url = excluded.documentation_url, date_updated = excluded.date_updated;

-- name: select_versions
SELECT * FROM schema_versions;

-- name: latest_version
SELECT * FROM schema_versions WHERE schema_id = :s AND owner_sid IN ('', :o) ORDER BY version DESC LIMIT 1;

-- name: get_version
SELECT * FROM schema_versions WHERE schema_id = :s AND owner_sid IN ('', :o) AND version = :v;

-- name: builtin_schema
SELECT 1 AS x FROM schema_versions WHERE owner_sid = '' AND schema_id = :s LIMIT 1;

-- name: max_version
SELECT MAX(version) AS v FROM schema_versions WHERE owner_sid = :o AND schema_id = :s;

-- name: insert_version
INSERT INTO schema_versions (schema_id, version, owner_sid, document, date_created)
VALUES (:schema_id, :version, :owner_sid, :document, :date_created);

-- name: reset_types
DELETE FROM event_types WHERE owner_sid <> '';

-- name: reset_versions
DELETE FROM schema_versions WHERE owner_sid <> '';

-- name: count_types
SELECT COUNT(*) AS n FROM event_types WHERE owner_sid = :o;

-- name: count_schemas
SELECT COUNT(DISTINCT schema_id) AS n FROM schema_versions WHERE owner_sid = :o;
