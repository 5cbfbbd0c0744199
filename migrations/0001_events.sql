-- Events and their seat layouts: what an organizer creates with POST /api/events.
-- Live seat state (held, booked) lives in Redis; bookings get their own tables.

CREATE TABLE events (
    id          text PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-]{1,64}$'),
    name        text NOT NULL,
    starts_at   timestamptz,
    currency    text NOT NULL,
    -- The stage: best-available seating prefers seats nearest this point.
    focal_x     double precision NOT NULL,
    focal_y     double precision NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE seats (
    event_id    text NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    -- 0-based order of the seat in the event's layout, as the organizer sent it.
    position    int NOT NULL,
    id          text NOT NULL,
    section     text NOT NULL,
    row         text NOT NULL,
    number      int NOT NULL,
    x           double precision NOT NULL,
    y           double precision NOT NULL,
    tier        text NOT NULL CHECK (tier IN ('REGULAR', 'PREMIUM', 'VIP')),
    price_cents int NOT NULL CHECK (price_cents >= 0),
    PRIMARY KEY (event_id, id),
    UNIQUE (event_id, position)
);
