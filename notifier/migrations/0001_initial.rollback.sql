DROP TABLE audit_log;
DROP FUNCTION audit_log_append_only();
DROP TABLE api_keys;
DROP TABLE policy_versions;
DROP FUNCTION policy_versions_guard();
DROP TABLE policies;
DROP TABLE admins;
