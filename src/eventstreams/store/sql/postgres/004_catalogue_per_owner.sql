-- Custom event type names and schema ids are unique per owner, not globally (another tenant's
-- registration of the same name must neither fail nor reveal that it exists). Built-ins get owner ''
-- so the primary key (owner_sid, ...) covers them; they stay reserved for everybody (the store refuses
-- a custom name equal to a built-in's).
UPDATE event_types SET owner_sid = '' WHERE owner_sid IS NULL;
ALTER TABLE event_types ALTER COLUMN owner_sid SET DEFAULT '', ALTER COLUMN owner_sid SET NOT NULL;
ALTER TABLE event_types DROP CONSTRAINT event_types_pkey, ADD PRIMARY KEY (owner_sid, type);

UPDATE schema_versions SET owner_sid = '' WHERE owner_sid IS NULL;
ALTER TABLE schema_versions ALTER COLUMN owner_sid SET DEFAULT '', ALTER COLUMN owner_sid SET NOT NULL;
ALTER TABLE schema_versions DROP CONSTRAINT schema_versions_pkey, ADD PRIMARY KEY (owner_sid, schema_id, version);
