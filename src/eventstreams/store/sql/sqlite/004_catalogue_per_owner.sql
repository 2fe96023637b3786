-- Custom event type names and schema ids are unique per owner, not globally (another tenant's
-- registration of the same name must neither fail nor reveal that it exists). Built-ins get owner ''
-- so the primary key (owner_sid, ...) covers them; they stay reserved for everybody (the store refuses
-- a custom name equal to a built-in's).
CREATE TABLE event_types_new (
    type TEXT NOT NULL,
    schema_id TEXT NOT NULL,
    owner_sid TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL,
    status TEXT NOT NULL,
    documentation_url TEXT,
    segment_compatible INTEGER NOT NULL DEFAULT 0,
    date_created TEXT NOT NULL,
    date_updated TEXT NOT NULL,
    PRIMARY KEY (owner_sid, type)
);
INSERT INTO event_types_new (type, schema_id, owner_sid, description, status, documentation_url,
    segment_compatible, date_created, date_updated)
SELECT type, schema_id, COALESCE(owner_sid, ''), description, status, documentation_url, segment_compatible,
    date_created, date_updated FROM event_types;
DROP TABLE event_types;
ALTER TABLE event_types_new RENAME TO event_types;
CREATE INDEX event_types_schema ON event_types(schema_id, type);

CREATE TABLE schema_versions_new (
    schema_id TEXT NOT NULL,
    version INTEGER NOT NULL,
    owner_sid TEXT NOT NULL DEFAULT '',
    document TEXT NOT NULL,
    date_created TEXT NOT NULL,
    PRIMARY KEY (owner_sid, schema_id, version)
);
INSERT INTO schema_versions_new (schema_id, version, owner_sid, document, date_created)
SELECT schema_id, version, COALESCE(owner_sid, ''), document, date_created FROM schema_versions;
DROP TABLE schema_versions;
ALTER TABLE schema_versions_new RENAME TO schema_versions;
