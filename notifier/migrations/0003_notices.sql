-- Notices (email campaigns for a published version), the per-recipient delivery ledger,
-- send attempts, SendGrid webhook events, the offline outbox, and undeliverable addresses.

ALTER TABLE users
    ADD COLUMN email_undeliverable_at     timestamptz,
    ADD COLUMN email_undeliverable_reason text;

CREATE TABLE notices (
    id                     bigserial PRIMARY KEY,
    version_id             bigint NOT NULL REFERENCES policy_versions (id),
    kind                   text NOT NULL DEFAULT 'notice' CHECK (kind IN ('notice', 'reminder')),
    -- For reminders: how many days before the effective date this one is; 0 for notices.
    reminder_days          integer NOT NULL DEFAULT 0 CHECK (reminder_days >= 0),
    email                  boolean NOT NULL,
    in_app                 boolean NOT NULL,
    state                  text NOT NULL CHECK (
                               state IN ('scheduled', 'queued', 'sending', 'paused', 'cancelled', 'done')
                           ),
    scheduled_at           timestamptz NOT NULL DEFAULT now(),
    window_override_reason text,
    created_by             bigint REFERENCES admins (id),
    created_at             timestamptz NOT NULL DEFAULT now(),
    started_at             timestamptz,
    finished_at            timestamptz,
    -- Fan-out progress: the last user id written and the number of batches, so a re-run resumes.
    fanout_cursor          bigint NOT NULL DEFAULT 0,
    fanout_done            boolean NOT NULL DEFAULT false,
    batch_count            integer NOT NULL DEFAULT 0,
    CONSTRAINT notices_version_kind_key UNIQUE (version_id, kind, reminder_days)
);
CREATE INDEX notices_active ON notices (state) WHERE state NOT IN ('cancelled', 'done');

CREATE TABLE deliveries (
    id                 bigserial PRIMARY KEY,
    notice_id          bigint NOT NULL REFERENCES notices (id),
    user_id            bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    batch_no           integer NOT NULL,
    state              text NOT NULL DEFAULT 'pending' CHECK (
                           state IN ('pending', 'sending', 'sent', 'delivered', 'deferred',
                                     'bounced', 'dropped', 'failed', 'cancelled')
                       ),
    email              text,          -- the address it was sent to, set when claimed
    attempts           integer NOT NULL DEFAULT 0,
    transient_errors   integer NOT NULL DEFAULT 0,
    due_at             timestamptz NOT NULL DEFAULT now(),
    lease_expires_at   timestamptz,
    sent_at            timestamptz,
    sg_message_id      text,
    error              text,
    -- Re-sent after an attempt whose outcome is unknown (worker died during the request, or
    -- a timeout): SendGrid may have accepted both.
    possible_duplicate boolean NOT NULL DEFAULT false,
    event_at           timestamptz,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT deliveries_notice_user_key UNIQUE (notice_id, user_id)
);
CREATE INDEX deliveries_batch ON deliveries (notice_id, batch_no);
-- Claims, the recovery sweep and "is the notice finished?" read only open rows.
CREATE INDEX deliveries_open ON deliveries (notice_id, batch_no)
    WHERE state IN ('pending', 'sending');
CREATE INDEX deliveries_user ON deliveries (user_id);

CREATE TABLE send_attempts (
    id           bigserial PRIMARY KEY,
    notice_id    bigint NOT NULL REFERENCES notices (id),
    batch_no     integer NOT NULL,
    recipients   integer NOT NULL,
    claimed_at   timestamptz NOT NULL DEFAULT now(),
    requested_at timestamptz,    -- just before the HTTP request
    finished_at  timestamptz,
    outcome      text CHECK (outcome IN ('sent', 'rate_limited', 'retry', 'failed', 'interrupted')),
    status_code  integer,
    message_id   text,
    detail       text
);
CREATE INDEX send_attempts_batch ON send_attempts (notice_id, batch_no);

CREATE TABLE delivery_events (
    id           bigserial PRIMARY KEY,
    sg_event_id  text NOT NULL CONSTRAINT delivery_events_sg_event_id_key UNIQUE,
    delivery_id  bigint REFERENCES deliveries (id) ON DELETE CASCADE,
    event        text NOT NULL,
    email        text,
    reason       text,
    occurred_at  timestamptz,
    received_at  timestamptz NOT NULL DEFAULT now(),
    payload      jsonb NOT NULL
);
CREATE INDEX delivery_events_delivery ON delivery_events (delivery_id);

-- Rendered emails kept instead of sent when no SENDGRID_API_KEY is configured.
CREATE TABLE outbox (
    id          bigserial PRIMARY KEY,
    notice_id   bigint REFERENCES notices (id),
    delivery_id bigint REFERENCES deliveries (id) ON DELETE CASCADE,
    to_email    text NOT NULL,
    to_name     text NOT NULL DEFAULT '',
    subject     text NOT NULL,
    text_body   text NOT NULL,
    html_body   text NOT NULL,
    is_test     boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);
