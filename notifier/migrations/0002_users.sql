-- The audience: users of the host application, synced by API or CSV.

CREATE TABLE users (
    id           bigserial PRIMARY KEY,
    external_id  text NOT NULL CONSTRAINT users_external_id_key UNIQUE
                 CHECK (length(external_id) BETWEEN 1 AND 200),
    email        text CHECK (email IS NULL OR email ~ '^[^@\s]+@[^@\s]+$'),
    name         text NOT NULL DEFAULT '',
    locale       text NOT NULL DEFAULT 'en',
    segment      text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
