-- The hex-digest checks on the evidence tables, same rule, ~12x cheaper to evaluate.
-- `x ~ '^[0-9a-f]{64}$'` cost PostgreSQL ~10 us per check (the counted repetition expands the
-- regex machine), five per acceptance row: 6% of a decision's database time in a profile of
-- `make bench-pending`. `x ~ '^[0-9a-f]+$' AND octet_length(x) = 64` accepts exactly the same
-- strings (64 lowercase hex digits) at ~0.6 us (BENCHMARKS_pending.md).
-- Rows already stored satisfied the old rule, hence the new one: NOT VALID + VALIDATE rechecks
-- them under a lock that does not block reads.
ALTER TABLE acceptances
    DROP CONSTRAINT acceptances_subject_key_check,
    DROP CONSTRAINT acceptances_content_sha256_check,
    DROP CONSTRAINT acceptances_context_sha256_check,
    DROP CONSTRAINT acceptances_prev_hash_check,
    DROP CONSTRAINT acceptances_row_hash_check,
    ADD CONSTRAINT acceptances_subject_key_check
        CHECK (subject_key ~ '^[0-9a-f]+$' AND octet_length(subject_key) = 64) NOT VALID,
    ADD CONSTRAINT acceptances_content_sha256_check
        CHECK (content_sha256 ~ '^[0-9a-f]+$' AND octet_length(content_sha256) = 64) NOT VALID,
    ADD CONSTRAINT acceptances_context_sha256_check
        CHECK (context_sha256 ~ '^[0-9a-f]+$' AND octet_length(context_sha256) = 64) NOT VALID,
    ADD CONSTRAINT acceptances_prev_hash_check
        CHECK (prev_hash ~ '^[0-9a-f]+$' AND octet_length(prev_hash) = 64) NOT VALID,
    ADD CONSTRAINT acceptances_row_hash_check
        CHECK (row_hash ~ '^[0-9a-f]+$' AND octet_length(row_hash) = 64) NOT VALID;
ALTER TABLE acceptances VALIDATE CONSTRAINT acceptances_subject_key_check;
ALTER TABLE acceptances VALIDATE CONSTRAINT acceptances_content_sha256_check;
ALTER TABLE acceptances VALIDATE CONSTRAINT acceptances_context_sha256_check;
ALTER TABLE acceptances VALIDATE CONSTRAINT acceptances_prev_hash_check;
ALTER TABLE acceptances VALIDATE CONSTRAINT acceptances_row_hash_check;

ALTER TABLE evidence_chain_head
    DROP CONSTRAINT evidence_chain_head_last_hash_check,
    ADD CONSTRAINT evidence_chain_head_last_hash_check
        CHECK (last_hash ~ '^[0-9a-f]+$' AND octet_length(last_hash) = 64) NOT VALID;
ALTER TABLE evidence_chain_head VALIDATE CONSTRAINT evidence_chain_head_last_hash_check;
