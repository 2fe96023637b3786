-- name: lock
-- Two ingests of one account would otherwise both create a profile for the same new identifier.
SELECT pg_advisory_xact_lock(hashtextextended('profiles:' || :a, 0)) IS NOT NULL AS locked;
