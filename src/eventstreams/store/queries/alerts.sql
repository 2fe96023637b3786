-- Alerts (Monitor Alerts shape) and the per-sink grouping state they are raised from.

-- name: ensure_state
INSERT INTO sink_alert_state (sink_sid, account_sid, total_errors, errors_since_alert, last_alert_at,
    next_threshold)
VALUES (:s, :a, 0, 0, 0, 10)
ON CONFLICT (sink_sid) DO NOTHING;

-- name: get_state
SELECT total_errors, errors_since_alert, last_alert_at, next_threshold FROM sink_alert_state WHERE sink_sid = :s
{for_update};

-- name: put_state
UPDATE sink_alert_state SET total_errors = :t, errors_since_alert = :e, last_alert_at = :l, next_threshold = :n
WHERE sink_sid = :s;

-- name: insert_alert
INSERT INTO alerts (sid, account_sid, sink_sid, error_code, log_level, alert_text, http_status, response_body,
    request_url, error_count, created_at)
VALUES (:sid, :account_sid, :sink_sid, :error_code, :log_level, :alert_text, :http_status, :response_body,
    :request_url, :error_count, :created_at);

-- name: select_alerts
SELECT * FROM alerts;

-- name: get_alert
SELECT * FROM alerts WHERE sid = :s AND account_sid = :a;
