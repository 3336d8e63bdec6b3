DELETE FROM host_webhook_events WHERE version_id IS NOT NULL;
ALTER TABLE host_webhook_events
    DROP CONSTRAINT host_webhook_events_version_once,
    DROP CONSTRAINT host_webhook_events_subject,
    DROP CONSTRAINT host_webhook_events_event_check,
    ADD CONSTRAINT host_webhook_events_event_check
        CHECK (event IN ('acceptance.created', 'acceptance.declined')),
    DROP COLUMN version_id,
    ALTER COLUMN acceptance_id SET NOT NULL;
