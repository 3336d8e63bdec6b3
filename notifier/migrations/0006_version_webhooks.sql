-- Webhooks to the host also announce a published version (`version.published`), so a host
-- that keeps users' pending answers for a while can drop them at once. Such an event names a
-- version instead of an acceptance: exactly one of the two.
ALTER TABLE host_webhook_events
    ALTER COLUMN acceptance_id DROP NOT NULL,
    ADD COLUMN version_id bigint REFERENCES policy_versions (id),
    DROP CONSTRAINT host_webhook_events_event_check,
    ADD CONSTRAINT host_webhook_events_event_check
        CHECK (event IN ('acceptance.created', 'acceptance.declined', 'version.published')),
    ADD CONSTRAINT host_webhook_events_subject
        CHECK ((acceptance_id IS NULL) <> (version_id IS NULL)
               AND (version_id IS NULL) = (event <> 'version.published')),
    ADD CONSTRAINT host_webhook_events_version_once UNIQUE (api_key_id, version_id);
