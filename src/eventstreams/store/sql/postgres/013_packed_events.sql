-- Event payloads packed at rest (store/packing.py): a zstd frame with the catalogue's dictionary, and then
-- payload holds ''. Rows written before, or with EVENTSTREAMS_PACK_EVENTS=false, keep their JSON in payload.
-- Adding a nullable column rewrites nothing: existing databases migrate at once.
ALTER TABLE events ADD COLUMN packed BYTEA;
