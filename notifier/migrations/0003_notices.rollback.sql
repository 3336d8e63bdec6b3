DROP TABLE outbox;
DROP TABLE delivery_events;
DROP TABLE send_attempts;
DROP TABLE deliveries;
DROP TABLE notices;
ALTER TABLE users
    DROP COLUMN email_undeliverable_reason,
    DROP COLUMN email_undeliverable_at;
