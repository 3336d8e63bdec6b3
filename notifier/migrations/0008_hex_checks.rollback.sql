ALTER TABLE acceptances
    DROP CONSTRAINT acceptances_subject_key_check,
    DROP CONSTRAINT acceptances_content_sha256_check,
    DROP CONSTRAINT acceptances_context_sha256_check,
    DROP CONSTRAINT acceptances_prev_hash_check,
    DROP CONSTRAINT acceptances_row_hash_check,
    ADD CONSTRAINT acceptances_subject_key_check CHECK (subject_key ~ '^[0-9a-f]{64}$'),
    ADD CONSTRAINT acceptances_content_sha256_check CHECK (content_sha256 ~ '^[0-9a-f]{64}$'),
    ADD CONSTRAINT acceptances_context_sha256_check CHECK (context_sha256 ~ '^[0-9a-f]{64}$'),
    ADD CONSTRAINT acceptances_prev_hash_check CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
    ADD CONSTRAINT acceptances_row_hash_check CHECK (row_hash ~ '^[0-9a-f]{64}$');
ALTER TABLE evidence_chain_head
    DROP CONSTRAINT evidence_chain_head_last_hash_check,
    ADD CONSTRAINT evidence_chain_head_last_hash_check CHECK (last_hash ~ '^[0-9a-f]{64}$');
