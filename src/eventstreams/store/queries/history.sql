-- What became of deliveries: dead letters and the delivery log.

-- name: select_dead_letters
SELECT * FROM dead_letters;

-- name: select_log
SELECT * FROM delivery_log;
