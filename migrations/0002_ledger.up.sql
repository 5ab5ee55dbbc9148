-- Disbursement: customers' exposure and the loans booked against it, and the
-- statuses an approved application moves to (DISBURSED, CANCELLED).
-- Money is BIGINT won.
BEGIN;

ALTER TABLE applications DROP CONSTRAINT applications_status_check;
ALTER TABLE applications ADD CONSTRAINT applications_status_check CHECK (status IN
    ('RECEIVED', 'CHECKING_CREDIT', 'UNDERWRITING', 'APPROVED',
     'DISBURSED', 'REJECTED', 'FAILED', 'CANCELLED'));

-- Why a status reached after the decision: EXPOSURE_LIMIT_EXCEEDED or
-- CANCELLED (code), and the figures or the cancel signal's reason (detail).
ALTER TABLE applications
    ADD COLUMN status_reason text NULL,
    ADD COLUMN status_detail text NULL;

-- One row per customer, created on the customer's first booking with the
-- ledger's default limit. exposure is the sum of booked outstanding
-- principal. version is the optimistic lock: every change to exposure bumps
-- it, and a write is made only WHERE version = the version read. last_fence
-- is the highest Redis fencing token that wrote the row; the booking UPDATE
-- also requires last_fence < its token, so a writer holding an older token
-- (it lost its lock) is refused. When Redis loses its counter, the ledger
-- floors it at last_fence, so tokens never go backwards here.
--
-- There is deliberately no CHECK (exposure <= exposure_limit): a bank must be
-- able to lower a limit below what is already lent, which then only stops
-- new loans. The ledger checks the limit before every booking.
CREATE TABLE customers (
    customer_id    text        PRIMARY KEY,
    exposure_limit bigint      NOT NULL CHECK (exposure_limit >= 0),
    exposure       bigint      NOT NULL DEFAULT 0 CHECK (exposure >= 0),
    version        bigint      NOT NULL DEFAULT 0,
    last_fence     bigint      NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- A booked and disbursed loan. UNIQUE (application_id) makes disbursement
-- idempotent: a retried or duplicated booking finds this row instead of
-- lending twice. No foreign key to applications: the ledger stands on its
-- own (it is benchmarked and tested without applications), and the workflow
-- always stores the application before it can book it.
CREATE TABLE loans (
    loan_id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    application_id  text        NOT NULL UNIQUE,
    customer_id     text        NOT NULL REFERENCES customers (customer_id),
    principal       bigint      NOT NULL CHECK (principal > 0),
    rate_bp         int         NOT NULL CHECK (rate_bp >= 0),
    term_months     int         NOT NULL CHECK (term_months > 0),
    monthly_payment bigint      NOT NULL CHECK (monthly_payment >= 0),
    status          text        NOT NULL CHECK (status IN ('DISBURSED')),
    -- The Redis fencing token of the lock under which it was booked; 0 when
    -- booked on optimistic locking alone.
    fencing_token   bigint      NOT NULL CHECK (fencing_token >= 0),
    created_at      timestamptz NOT NULL DEFAULT now(),
    disbursed_at    timestamptz NULL
);

CREATE INDEX loans_customer_id_idx ON loans (customer_id);

COMMIT;
