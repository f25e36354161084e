-- Orders, their lines (name and price snapshot), the payment saga of each order,
-- idempotency keys of POST /orders and the projection of known users.
CREATE TABLE orders (
    order_id        uuid        PRIMARY KEY,
    user_id         bigint      NOT NULL,
    status          text        NOT NULL CHECK (status IN ('PENDING', 'COMPLETED', 'FAILED')),
    total_amount    bigint      NOT NULL CHECK (total_amount >= 0),
    discount_amount bigint      NOT NULL DEFAULT 0,
    paid_amount     bigint      NOT NULL DEFAULT 0,
    user_coupon_id  bigint,
    failure_code    text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    completed_at    timestamptz,
    finished_at     timestamptz
);
CREATE INDEX orders_user_idx ON orders (user_id, created_at DESC, order_id DESC);

CREATE TABLE order_items (
    order_id    uuid    NOT NULL REFERENCES orders (order_id),
    product_id  bigint  NOT NULL,
    name        text    NOT NULL,
    unit_price  bigint  NOT NULL,
    quantity    integer NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, product_id)
);

-- One row per order's saga; ``data`` is the state machine's state, ``deadline`` when the
-- sweeper must feed it a timeout (NULL once the saga has nothing more to wait for).
CREATE TABLE sagas (
    order_id    uuid        PRIMARY KEY REFERENCES orders (order_id),
    step        text        NOT NULL,
    attempts    integer     NOT NULL DEFAULT 0,
    deadline    timestamptz,
    data        jsonb       NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sagas_deadline_idx ON sagas (deadline) WHERE deadline IS NOT NULL;

CREATE TABLE idempotency_keys (
    key           text        PRIMARY KEY,
    request_hash  text        NOT NULL,
    order_id      uuid        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE known_users (
    user_id     bigint      PRIMARY KEY,
    name        text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
