-- Undoes 0002. It refuses, rather than rewrite history, when applications
-- already hold a status that 0001 does not know.
BEGIN;

DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM applications WHERE status IN ('DISBURSED', 'CANCELLED')) THEN
        RAISE EXCEPTION 'cannot undo migration 0002: applications with status DISBURSED or CANCELLED exist';
    END IF;
END
$$;

DROP TABLE IF EXISTS loans;
DROP TABLE IF EXISTS customers;

ALTER TABLE applications
    DROP COLUMN IF EXISTS status_reason,
    DROP COLUMN IF EXISTS status_detail;

ALTER TABLE applications DROP CONSTRAINT applications_status_check;
ALTER TABLE applications ADD CONSTRAINT applications_status_check CHECK (status IN
    ('RECEIVED', 'CHECKING_CREDIT', 'UNDERWRITING', 'APPROVED', 'REJECTED', 'FAILED'));

COMMIT;
