BEGIN;

-- Every circuit-breaker transition, by the flow controller or an operator.
CREATE TABLE breaker_events (
    id         bigserial   PRIMARY KEY,
    breaker    text        NOT NULL, -- an agency name, or loan_product for the entry breaker
    from_state text        NOT NULL CHECK (from_state IN ('closed', 'half_open', 'open')),
    to_state   text        NOT NULL CHECK (to_state IN ('closed', 'half_open', 'open')),
    reason     text        NOT NULL,
    source     text        NOT NULL CHECK (source IN ('controller', 'operator')),
    at         timestamptz NOT NULL,
    -- The controller may repeat a write after a retry; the same transition
    -- at the same instant is one event.
    UNIQUE (breaker, at, to_state)
);
CREATE INDEX breaker_events_breaker_at_idx ON breaker_events (breaker, at);

COMMIT;
