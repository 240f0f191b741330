-- Delivery attempts are kept for 30 days (NotificationStore::record_attempt prunes the
-- older ones as it records a new one): found by their time.
CREATE INDEX notification_attempts_at ON notification_attempts (at);
