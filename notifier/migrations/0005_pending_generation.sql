-- A generation number for what `GET /api/v1/users/<id>/pending` reads from the policy tables
-- (policies, policy_versions, version_grace). Each app process caches that part and checks the
-- number in the same statement as the user's own decisions, so it never serves a stale list.
--
-- The number comes from a sequence, so it never repeats (not even after TRUNCATE), and is
-- written by a deferred constraint trigger: at COMMIT of the transaction that changed the
-- tables, visible exactly when the change is. Taking the row lock at commit, last, keeps it
-- out of the lock order of whatever the transaction did before.

CREATE SEQUENCE pending_generation_seq;

CREATE TABLE pending_generation (
    id  int PRIMARY KEY CHECK (id = 1),
    gen bigint NOT NULL
);
INSERT INTO pending_generation (id, gen) VALUES (1, nextval('pending_generation_seq'));

CREATE FUNCTION pending_generation_bump() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pending_generation (id, gen) VALUES (1, nextval('pending_generation_seq'))
    ON CONFLICT (id) DO UPDATE SET gen = excluded.gen;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER policies_pending_generation
    AFTER INSERT OR UPDATE OR DELETE ON policies
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION pending_generation_bump();
CREATE CONSTRAINT TRIGGER policy_versions_pending_generation
    AFTER INSERT OR UPDATE OR DELETE ON policy_versions
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION pending_generation_bump();
CREATE CONSTRAINT TRIGGER version_grace_pending_generation
    AFTER INSERT OR UPDATE OR DELETE ON version_grace
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION pending_generation_bump();
CREATE TRIGGER policies_pending_generation_truncate
    AFTER TRUNCATE ON policies
    FOR EACH STATEMENT EXECUTE FUNCTION pending_generation_bump();
CREATE TRIGGER policy_versions_pending_generation_truncate
    AFTER TRUNCATE ON policy_versions
    FOR EACH STATEMENT EXECUTE FUNCTION pending_generation_bump();
CREATE TRIGGER version_grace_pending_generation_truncate
    AFTER TRUNCATE ON version_grace
    FOR EACH STATEMENT EXECUTE FUNCTION pending_generation_bump();
