-- Admins, policies, immutable published versions, API keys and the audit log.

CREATE TABLE admins (
    id              bigserial PRIMARY KEY,
    email           text NOT NULL CHECK (email ~ '^[^@\s]+@[^@\s]+$'),
    password_hash   text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_sign_in_at timestamptz
);
CREATE UNIQUE INDEX admins_email_key ON admins (lower(email));

CREATE TABLE policies (
    id          bigserial PRIMARY KEY,
    slug        text NOT NULL CONSTRAINT policies_slug_key UNIQUE
                CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$'),
    title       text NOT NULL CHECK (length(btrim(title)) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE policy_versions (
    id                      bigserial PRIMARY KEY,
    uid                     uuid NOT NULL DEFAULT gen_random_uuid() UNIQUE,
    policy_id               bigint NOT NULL REFERENCES policies (id),
    seq                     integer NOT NULL CHECK (seq > 0),
    body_md                 text NOT NULL,
    body_html               text NOT NULL,
    content_sha256          text NOT NULL CHECK (content_sha256 ~ '^[0-9a-f]{64}$'),
    summary                 text NOT NULL DEFAULT '',
    effective_at            timestamptz,
    published_at            timestamptz,
    published_by            bigint REFERENCES admins (id),
    created_at              timestamptz NOT NULL DEFAULT now(),
    created_by              bigint REFERENCES admins (id),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    suggested_verdict       text CHECK (suggested_verdict IN ('cosmetic', 'minor', 'material')),
    classification          jsonb,
    verdict                 text CHECK (verdict IN ('cosmetic', 'minor', 'material')),
    verdict_override_reason text,
    acceptance_mode         text NOT NULL DEFAULT 'explicit'
                            CHECK (acceptance_mode IN ('explicit', 'notice', 'none')),
    CONSTRAINT policy_versions_policy_seq_key UNIQUE (policy_id, seq),
    CONSTRAINT policy_versions_published_complete CHECK (
        published_at IS NULL
        OR (effective_at IS NOT NULL AND btrim(summary) <> '' AND verdict IS NOT NULL)
    ),
    CONSTRAINT policy_versions_override_has_reason CHECK (
        suggested_verdict IS NULL OR verdict IS NULL OR verdict = suggested_verdict
        OR btrim(coalesce(verdict_override_reason, '')) <> ''
    )
);
-- At most one open draft per policy: the editor and the API always know which one to change.
CREATE UNIQUE INDEX policy_versions_one_draft ON policy_versions (policy_id) WHERE published_at IS NULL;
CREATE INDEX policy_versions_in_force
    ON policy_versions (policy_id, effective_at DESC, seq DESC) WHERE published_at IS NOT NULL;

-- A published version never changes and is never deleted; publishing checks the content hash
-- and that the effective date does not precede an already published version's.
CREATE FUNCTION policy_versions_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.published_at IS NOT NULL THEN
            RAISE EXCEPTION 'policy version % is published and cannot be deleted', OLD.id
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN OLD;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.published_at IS NOT NULL THEN
        RAISE EXCEPTION 'policy version % is published and immutable', OLD.id
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.content_sha256 <> encode(sha256(convert_to(NEW.body_md, 'UTF8')), 'hex') THEN
        RAISE EXCEPTION 'content_sha256 does not match body_md'
            USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.published_at IS NOT NULL AND EXISTS (
        SELECT 1
          FROM policy_versions
         WHERE policy_id = NEW.policy_id
           AND published_at IS NOT NULL
           AND id <> NEW.id
           AND effective_at > NEW.effective_at
    ) THEN
        RAISE EXCEPTION 'effective_at precedes an already published version of this policy'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER policy_versions_guard
    BEFORE INSERT OR UPDATE OR DELETE ON policy_versions
    FOR EACH ROW EXECUTE FUNCTION policy_versions_guard();

CREATE TABLE api_keys (
    id           bigserial PRIMARY KEY,
    name         text NOT NULL CHECK (length(btrim(name)) BETWEEN 1 AND 100),
    prefix       text NOT NULL CONSTRAINT api_keys_prefix_key UNIQUE,
    key_sha256   text NOT NULL CONSTRAINT api_keys_key_sha256_key UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    created_by   bigint REFERENCES admins (id),
    revoked_at   timestamptz,
    last_used_at timestamptz
);

CREATE TABLE audit_log (
    id        bigserial PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT now(),
    admin_id  bigint REFERENCES admins (id),
    actor     text NOT NULL,
    action    text NOT NULL,
    subject   text,
    details   jsonb NOT NULL DEFAULT '{}'::jsonb,
    ip        inet
);
CREATE INDEX audit_log_at ON audit_log (at DESC, id DESC);

-- The audit log is append-only.
CREATE FUNCTION audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'check_violation';
END;
$$;

CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
