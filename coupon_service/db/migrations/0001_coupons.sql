-- Coupons, their pre-created issue slots (one row per copy, which becomes the user's coupon),
-- the known-users projection and the saga's per-order coupon record.

CREATE TABLE coupons (
    coupon_id        bigserial PRIMARY KEY,
    name             text        NOT NULL,
    discount_type    text        NOT NULL CHECK (discount_type IN ('FIXED', 'RATE')),
    discount_value   bigint      NOT NULL CHECK (discount_value >= 1),
    total_quantity   integer     NOT NULL CHECK (total_quantity >= 1),
    issue_starts_at  timestamptz,
    issue_ends_at    timestamptz,
    valid_days       integer     NOT NULL CHECK (valid_days >= 1),
    min_order_amount bigint      NOT NULL DEFAULT 0 CHECK (min_order_amount >= 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (discount_type <> 'RATE' OR discount_value <= 100),
    CHECK (issue_starts_at IS NULL OR issue_ends_at IS NULL OR issue_starts_at < issue_ends_at)
);

-- One row per copy of a coupon, created with the coupon. Issuing claims a free row
-- (user_id IS NULL) with FOR UPDATE SKIP LOCKED, so concurrent requests lock different rows.
-- A claimed row is the user's coupon: user_coupon_id is its id.
CREATE TABLE user_coupons (
    user_coupon_id    bigserial PRIMARY KEY,
    coupon_id         bigint      NOT NULL REFERENCES coupons (coupon_id),
    slot_no           integer     NOT NULL,
    user_id           bigint,
    status            text        NOT NULL DEFAULT 'AVAILABLE'
                                  CHECK (status IN ('AVAILABLE', 'RESERVED', 'USED')),
    issued_at         timestamptz,
    expires_at        timestamptz,
    used_at           timestamptz,
    reserved_order_id text,
    CHECK ((user_id IS NULL) = (issued_at IS NULL)),
    CHECK (status <> 'RESERVED' OR reserved_order_id IS NOT NULL)
);
CREATE UNIQUE INDEX user_coupons_slot ON user_coupons (coupon_id, slot_no);
-- "once per user" is a database fact
CREATE UNIQUE INDEX user_coupons_once_per_user ON user_coupons (coupon_id, user_id);
CREATE INDEX user_coupons_free ON user_coupons (coupon_id, slot_no) WHERE user_id IS NULL;
CREATE INDEX user_coupons_owner ON user_coupons (user_id, issued_at DESC, user_coupon_id DESC)
    WHERE user_id IS NOT NULL;

-- Projection of user.registered (plus positive answers of balance's internal lookup).
CREATE TABLE known_users (
    user_id    bigint PRIMARY KEY,
    name       text        NOT NULL,
    created_at timestamptz NOT NULL
);

-- What the payment saga did with each order's coupon: the business key of idempotency and fencing.
CREATE TABLE order_coupons (
    order_id        text PRIMARY KEY,
    state           text        NOT NULL
                                CHECK (state IN ('RESERVED', 'REFUSED', 'CONFIRMED', 'RELEASED', 'FENCED')),
    user_coupon_id  bigint,
    discount_amount bigint,
    failure_code    text,
    failure_reason  text,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
