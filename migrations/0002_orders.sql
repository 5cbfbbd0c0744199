-- Orders, their seats, tickets, payments, refunds, Stripe webhook events, an
-- outbox of payment/live-state actions, and an append-only audit log.
-- Order states and transitions are written once, in server/order_states.py.

CREATE TABLE orders (
    id              text PRIMARY KEY,
    event_id        text NOT NULL REFERENCES events (id),
    buyer_id        text NOT NULL,
    hold_id         text NOT NULL UNIQUE,          -- a hold checks out once: a repeat returns this order
    status          text NOT NULL CHECK (status IN
                        ('pending', 'confirmed', 'expired', 'cancelled', 'refunded', 'partially_refunded')),
    amount_cents    integer NOT NULL CHECK (amount_cents >= 0),
    refunded_cents  integer NOT NULL DEFAULT 0 CHECK (refunded_cents >= 0 AND refunded_cents <= amount_cents),
    currency        text NOT NULL,
    payment_intent_id text UNIQUE,
    client_secret   text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    confirmed_at    timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_pending_by_expiry ON orders (expires_at) WHERE status = 'pending';
CREATE INDEX orders_by_buyer ON orders (buyer_id, created_at);
CREATE INDEX orders_by_event_status ON orders (event_id, status);

-- A seat of an order is "live" while the order reserves it (pending) or owns
-- it (confirmed, partially refunded). The partial unique index is the
-- database's own refusal of a second live booking of a seat.
CREATE TABLE order_seats (
    order_id    text NOT NULL REFERENCES orders (id),
    event_id    text NOT NULL,
    seat_id     text NOT NULL,
    price_cents integer NOT NULL CHECK (price_cents >= 0),
    live        boolean NOT NULL,
    PRIMARY KEY (order_id, seat_id),
    FOREIGN KEY (event_id, seat_id) REFERENCES seats (event_id, id)
);
CREATE UNIQUE INDEX order_seats_one_live_order_per_seat ON order_seats (event_id, seat_id) WHERE live;

CREATE TABLE tickets (
    code        text PRIMARY KEY,                   -- unguessable: what a QR code carries
    order_id    text NOT NULL REFERENCES orders (id),
    event_id    text NOT NULL,
    seat_id     text NOT NULL,
    issued_at   timestamptz NOT NULL DEFAULT now(),
    voided_at   timestamptz,
    UNIQUE (order_id, seat_id)
);

CREATE TABLE payments (
    payment_intent_id text PRIMARY KEY,
    order_id        text NOT NULL UNIQUE REFERENCES orders (id),
    status          text NOT NULL,                  -- Stripe's PaymentIntent status as last seen
    amount_cents    integer NOT NULL,
    currency        text NOT NULL,
    captured_cents  integer NOT NULL DEFAULT 0,
    last_error      text,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE refunds (
    id              text PRIMARY KEY,               -- Stripe's re_…
    order_id        text NOT NULL REFERENCES orders (id),
    amount_cents    integer NOT NULL CHECK (amount_cents >= 0),
    reason          text,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Each provider event is acted on once: its row is written in the same
-- transaction as its effects.
CREATE TABLE webhook_events (
    provider    text NOT NULL,
    event_id    text NOT NULL,
    type        text NOT NULL,
    outcome     text NOT NULL,
    payload     jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, event_id)
);

-- Side effects decided inside a transaction and carried out after it
-- commits (Stripe captures, cancels and refunds; freeing seats in Redis),
-- retried until done, so a crash between commit and effect loses nothing.
CREATE TABLE outbox (
    id              bigserial PRIMARY KEY,
    order_id        text NOT NULL REFERENCES orders (id),
    action          text NOT NULL CHECK (action IN ('capture', 'cancel_payment', 'refund', 'free_seats')),
    amount_cents    integer,
    idempotency_key text NOT NULL UNIQUE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    done_at         timestamptz
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE done_at IS NULL;

-- Every order state change with its cause. Append-only: updates and deletes are refused.
CREATE TABLE order_audit (
    id          bigserial PRIMARY KEY,
    order_id    text NOT NULL REFERENCES orders (id),
    at          timestamptz NOT NULL DEFAULT now(),
    from_status text,
    to_status   text NOT NULL,
    cause       text NOT NULL,
    details     jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX order_audit_by_order ON order_audit (order_id, id);

CREATE FUNCTION order_audit_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'order_audit is append-only (% refused)', TG_OP;
END;
$$;
CREATE TRIGGER order_audit_append_only
    BEFORE UPDATE OR DELETE ON order_audit
    FOR EACH ROW EXECUTE FUNCTION order_audit_is_append_only();
