-- Acceptance: audience extras, per-key host settings, append-only hash-chained evidence,
-- its erasable personal context, and webhooks to the host application.

ALTER TABLE users
    ADD COLUMN tags       text[] NOT NULL DEFAULT '{}',
    ADD COLUMN api_key_id bigint REFERENCES api_keys (id),
    ADD COLUMN erased_at  timestamptz;
CREATE INDEX users_api_key ON users (api_key_id) WHERE api_key_id IS NOT NULL;

-- What an API key may do beyond the API: see only its own users (scoped), sign widget tokens,
-- be called from browser origins, and receive acceptance webhooks.
CREATE TABLE api_key_settings (
    api_key_id      bigint PRIMARY KEY REFERENCES api_keys (id),
    scoped          boolean NOT NULL DEFAULT false,
    widget_secret   text NOT NULL,
    allowed_origins text[] NOT NULL DEFAULT '{}',
    webhook_url     text CHECK (webhook_url IS NULL OR webhook_url ~ '^https?://'),
    webhook_secret  text NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Optional grace period after the effective date before an explicit prompt blocks.
CREATE TABLE version_grace (
    version_id bigint PRIMARY KEY REFERENCES policy_versions (id),
    grace      interval NOT NULL CHECK (grace >= interval '0')
);

-- One row per decision (user, version, accepted|declined). The chain covers only
-- pseudonymous fields: the user's keyed subject hash, never their email, IP or user agent,
-- which live in acceptance_context and may be erased without breaking the chain.
CREATE TABLE acceptances (
    id             bigserial PRIMARY KEY,
    chain          smallint NOT NULL CHECK (chain >= 0),
    user_id        bigint NOT NULL REFERENCES users (id),
    subject_key    text NOT NULL CHECK (subject_key ~ '^[0-9a-f]{64}$'),
    version_id     bigint NOT NULL REFERENCES policy_versions (id),
    content_sha256 text NOT NULL CHECK (content_sha256 ~ '^[0-9a-f]{64}$'),
    decision       text NOT NULL CHECK (decision IN ('accepted', 'declined')),
    method         text NOT NULL CHECK (method IN ('click', 'email_link', 'api', 'implied')),
    recorded_at    timestamptz NOT NULL,
    locale         text NOT NULL DEFAULT '',
    prompt_text    text NOT NULL DEFAULT '',
    delivery_id    bigint,
    api_key_id     bigint REFERENCES api_keys (id),
    context_sha256 text NOT NULL CHECK (context_sha256 ~ '^[0-9a-f]{64}$'),
    prev_hash      text NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
    row_hash       text NOT NULL CONSTRAINT acceptances_row_hash_key UNIQUE
                   CHECK (row_hash ~ '^[0-9a-f]{64}$'),
    CONSTRAINT acceptances_once UNIQUE (user_id, version_id, decision)
);
CREATE INDEX acceptances_version ON acceptances (version_id, decision, recorded_at);

-- Personal context of each decision, erasable on request (only once the user is erased).
CREATE TABLE acceptance_context (
    acceptance_id bigint PRIMARY KEY REFERENCES acceptances (id),
    salt          text NOT NULL,
    ip            inet,
    user_agent    text NOT NULL DEFAULT '',
    email         text
);

CREATE INDEX acceptances_chain ON acceptances (chain, id);

-- Evidence is split into a few independent chains (user_id modulo a constant) so that appends
-- for different users do not queue behind one lock. Each chain's head row serialises its
-- appends: an insert locks the head, links to last_hash, and moves the head in one transaction.
CREATE TABLE evidence_chain_head (
    chain     smallint PRIMARY KEY CHECK (chain >= 0),
    last_id   bigint NOT NULL,
    last_hash text NOT NULL CHECK (last_hash ~ '^[0-9a-f]{64}$')
);

CREATE FUNCTION acceptances_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'acceptances is append-only (% refused)', TG_OP
        USING ERRCODE = 'check_violation';
END;
$$;

CREATE TRIGGER acceptances_append_only
    BEFORE UPDATE OR DELETE ON acceptances
    FOR EACH ROW EXECUTE FUNCTION acceptances_append_only();

CREATE FUNCTION acceptance_context_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION 'acceptance_context cannot be changed, only erased'
            USING ERRCODE = 'check_violation';
    END IF;
    IF NOT EXISTS (
        SELECT 1
          FROM acceptances a
          JOIN users u ON u.id = a.user_id
         WHERE a.id = OLD.acceptance_id AND u.erased_at IS NOT NULL
    ) THEN
        RAISE EXCEPTION 'acceptance_context is erased only with its user'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN OLD;
END;
$$;

CREATE TRIGGER acceptance_context_guard
    BEFORE UPDATE OR DELETE ON acceptance_context
    FOR EACH ROW EXECUTE FUNCTION acceptance_context_guard();

CREATE FUNCTION evidence_chain_head_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the evidence chain head cannot be deleted' USING ERRCODE = 'check_violation';
END;
$$;

CREATE TRIGGER evidence_chain_head_guard
    BEFORE DELETE ON evidence_chain_head
    FOR EACH ROW EXECUTE FUNCTION evidence_chain_head_guard();

-- Webhooks to the host: one row per (key, decision), its last attempt visible to admins.
CREATE TABLE host_webhook_events (
    id              bigserial PRIMARY KEY,
    api_key_id      bigint NOT NULL REFERENCES api_keys (id),
    acceptance_id   bigint NOT NULL REFERENCES acceptances (id),
    event           text NOT NULL CHECK (event IN ('acceptance.created', 'acceptance.declined')),
    url             text NOT NULL,
    payload         jsonb NOT NULL,
    state           text NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'delivered', 'retrying', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    last_status     integer,
    last_error      text,
    last_attempt_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT host_webhook_events_once UNIQUE (api_key_id, acceptance_id)
);
CREATE INDEX host_webhook_events_key ON host_webhook_events (api_key_id, id DESC);
