-- An acceptance names the notice delivery it answers; from now on that delivery must exist.
-- Deliveries are never deleted (retention keeps them because evidence points at them), so the
-- key costs nothing later. NOT VALID: rows written before this migration are not re-checked
-- (they are evidence and cannot be changed anyway); every new row is.
ALTER TABLE acceptances
    ADD CONSTRAINT acceptances_delivery_id_fkey
    FOREIGN KEY (delivery_id) REFERENCES deliveries (id) NOT VALID;
