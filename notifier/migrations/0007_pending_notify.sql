-- Every change that can alter a user's pending answer is announced on the channel
-- `notifier_pending`, so each web process can keep those answers in memory and drop what a
-- commit made stale (notifier/pendingcache.py). Triggers, not application code, announce it:
-- every write path is covered, including ones added later and hand-written SQL (the one
-- exception, the API's own decisions, is below).
--   'u 12 40 …'  these users' decisions or details changed (user ids, at most 500 a message);
--   'all'        policies, published versions, grace periods or API keys changed.
-- PostgreSQL delivers a notification only once its transaction commits, in commit order, and
-- sends one copy of identical notifications made in one transaction.

CREATE FUNCTION notify_pending_all() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('notifier_pending', 'all');
    RETURN NULL;
END;
$$;

-- A decision: one row per statement on every path, so a row trigger (the cheapest).
-- Except on the API's decision path: a notifying transaction holds a database-wide lock from
-- its commit until the commit is flushed, so NOTIFY serialises those commits (it cut API
-- acceptances per second by a third). That path's connections set
-- `notifier.app_announces_decisions` and announce each decision through Redis after commit
-- (notifier/decisions.py, notifier/fastpath.py).
CREATE FUNCTION notify_pending_decision() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('notifier_pending', 'u ' || NEW.user_id);
    RETURN NULL;
END;
$$;

CREATE TRIGGER acceptances_notify_pending
    AFTER INSERT ON acceptances
    FOR EACH ROW
    WHEN (current_setting('notifier.app_announces_decisions', true) IS DISTINCT FROM 'on')
    EXECUTE FUNCTION notify_pending_decision();

-- Users changed or deleted (an import updates thousands in one statement): the ids from the
-- statement's transition table `changed`, 500 to a message; over 5,000, one 'all'.
-- New users need no message: an unknown user is never kept.
CREATE FUNCTION notify_pending_users() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    message text;
BEGIN
    IF (SELECT count(*) FROM changed) > 5000 THEN
        PERFORM pg_notify('notifier_pending', 'all');
        RETURN NULL;
    END IF;
    FOR message IN
        SELECT 'u ' || string_agg(id::text, ' ')
          FROM (SELECT id, (row_number() OVER () - 1) / 500 AS chunk FROM changed) c
      GROUP BY chunk
    LOOP
        PERFORM pg_notify('notifier_pending', message);
    END LOOP;
    RETURN NULL;
END;
$$;

CREATE TRIGGER users_notify_pending_update
    AFTER UPDATE ON users REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION notify_pending_users();
CREATE TRIGGER users_notify_pending_delete
    AFTER DELETE ON users REFERENCING OLD TABLE AS changed
    FOR EACH STATEMENT EXECUTE FUNCTION notify_pending_users();

-- What every answer is built from. Drafts are edited all day and change no answer.
CREATE FUNCTION notify_pending_published() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (TG_OP <> 'DELETE' AND NEW.published_at IS NOT NULL)
       OR (TG_OP <> 'INSERT' AND OLD.published_at IS NOT NULL) THEN
        PERFORM pg_notify('notifier_pending', 'all');
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER policy_versions_notify_pending
    AFTER INSERT OR UPDATE OR DELETE ON policy_versions
    FOR EACH ROW EXECUTE FUNCTION notify_pending_published();
-- Row triggers with conditions: a statement that changes nothing, or nothing an answer shows
-- (a key's webhook URL, `last_used_at`, which the API touches once a minute, an
-- `INSERT … ON CONFLICT DO NOTHING`), must not empty every cache. One transaction's identical
-- 'all's are sent once.
CREATE TRIGGER policies_notify_pending
    AFTER UPDATE ON policies FOR EACH ROW
    WHEN (OLD.title IS DISTINCT FROM NEW.title OR OLD.slug IS DISTINCT FROM NEW.slug)
    EXECUTE FUNCTION notify_pending_all();
CREATE TRIGGER policies_notify_pending_delete
    AFTER DELETE ON policies FOR EACH ROW EXECUTE FUNCTION notify_pending_all();
CREATE TRIGGER version_grace_notify_pending
    AFTER INSERT OR UPDATE OR DELETE ON version_grace
    FOR EACH ROW EXECUTE FUNCTION notify_pending_all();
CREATE TRIGGER api_keys_notify_pending
    AFTER INSERT OR DELETE ON api_keys FOR EACH ROW EXECUTE FUNCTION notify_pending_all();
CREATE TRIGGER api_keys_notify_pending_update
    AFTER UPDATE ON api_keys FOR EACH ROW
    WHEN (OLD.revoked_at IS DISTINCT FROM NEW.revoked_at
          OR OLD.key_sha256 IS DISTINCT FROM NEW.key_sha256)
    EXECUTE FUNCTION notify_pending_all();
CREATE TRIGGER api_key_settings_notify_pending_insert
    AFTER INSERT ON api_key_settings FOR EACH ROW WHEN (NEW.scoped)
    EXECUTE FUNCTION notify_pending_all();
CREATE TRIGGER api_key_settings_notify_pending_update
    AFTER UPDATE ON api_key_settings FOR EACH ROW WHEN (OLD.scoped IS DISTINCT FROM NEW.scoped)
    EXECUTE FUNCTION notify_pending_all();
CREATE TRIGGER api_key_settings_notify_pending_delete
    AFTER DELETE ON api_key_settings FOR EACH ROW WHEN (OLD.scoped)
    EXECUTE FUNCTION notify_pending_all();

-- TRUNCATE of any of them (tests, restores).
CREATE TRIGGER acceptances_notify_pending_truncate
    AFTER TRUNCATE ON acceptances FOR EACH STATEMENT EXECUTE FUNCTION notify_pending_all();
CREATE TRIGGER users_notify_pending_truncate
    AFTER TRUNCATE ON users FOR EACH STATEMENT EXECUTE FUNCTION notify_pending_all();
CREATE TRIGGER policy_versions_notify_pending_truncate
    AFTER TRUNCATE ON policy_versions FOR EACH STATEMENT EXECUTE FUNCTION notify_pending_all();
CREATE TRIGGER policies_notify_pending_truncate
    AFTER TRUNCATE ON policies FOR EACH STATEMENT EXECUTE FUNCTION notify_pending_all();
CREATE TRIGGER version_grace_notify_pending_truncate
    AFTER TRUNCATE ON version_grace FOR EACH STATEMENT EXECUTE FUNCTION notify_pending_all();
CREATE TRIGGER api_keys_notify_pending_truncate
    AFTER TRUNCATE ON api_keys FOR EACH STATEMENT EXECUTE FUNCTION notify_pending_all();
CREATE TRIGGER api_key_settings_notify_pending_truncate
    AFTER TRUNCATE ON api_key_settings FOR EACH STATEMENT EXECUTE FUNCTION notify_pending_all();
