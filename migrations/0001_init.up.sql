-- Applications, the agencies' answers and the underwriting decision.
-- Money is BIGINT won (KRW has no minor unit). Loans and customers arrive in
-- later migrations.
BEGIN;

CREATE TABLE applications (
    application_id text        PRIMARY KEY,
    customer_id    text        NOT NULL,
    amount         bigint      NOT NULL CHECK (amount > 0),
    term_months    int         NOT NULL CHECK (term_months > 0),
    -- Checked so that a misspelt status cannot slip past the terminal-status
    -- guard in store (which compares exact strings).
    status         text        NOT NULL CHECK (status IN
        ('RECEIVED', 'CHECKING_CREDIT', 'UNDERWRITING', 'APPROVED', 'REJECTED', 'FAILED')),
    credit_path    text        NULL,
    error          text        NULL,
    workflow_id    text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX applications_customer_id_idx ON applications (customer_id);

-- One row per agency answer: a bureau score (score) or a customer's
-- financials (annual_income, total_debt, annual_debt_service).
CREATE TABLE credit_reports (
    id                  bigserial   PRIMARY KEY,
    application_id      text        NOT NULL REFERENCES applications (application_id),
    agency              text        NOT NULL,
    score               int         NULL,
    annual_income       bigint      NULL,
    total_debt          bigint      NULL,
    annual_debt_service bigint      NULL,
    report_id           text        NULL,
    fetched_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (application_id, agency)
);

CREATE TABLE decisions (
    application_id  text        PRIMARY KEY REFERENCES applications (application_id),
    approved        bool        NOT NULL,
    reason          text        NOT NULL,
    combined_score  int         NOT NULL,
    dsr_bp          int         NOT NULL,
    rate_bp         int         NOT NULL,
    approved_amount bigint      NOT NULL,
    monthly_payment bigint      NOT NULL,
    decided_at      timestamptz NOT NULL DEFAULT now()
);

COMMIT;
