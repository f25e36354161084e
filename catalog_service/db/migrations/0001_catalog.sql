-- Products with live stock, and what each order of the payment saga took.
CREATE TABLE products (
    id          bigserial PRIMARY KEY,
    name        text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    price       bigint      NOT NULL CHECK (price >= 0),
    stock       bigint      NOT NULL CHECK (stock >= 0),
    status      text        NOT NULL CHECK (status IN ('SELLABLE', 'SOLD_OUT', 'DISCONTINUED')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (status <> 'SOLD_OUT' OR stock = 0),
    CHECK (status <> 'SELLABLE' OR stock > 0)
);
-- The default listing (status = SELLABLE) walks this index in id order.
CREATE INDEX products_sellable_id ON products (id) WHERE status = 'SELLABLE';

-- One row per order the saga asked about: the business key that makes DeductStock and
-- RestoreStock idempotent. FENCED = restored before anything was taken.
CREATE TABLE order_stock (
    order_id    text        PRIMARY KEY,
    status      text        NOT NULL CHECK (status IN ('DEDUCTED', 'RESTORED', 'FAILED', 'FENCED')),
    failure_code text,
    failure_product_id bigint,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Exactly what a DEDUCTED order took, so RestoreStock puts back that and nothing else.
CREATE TABLE order_stock_lines (
    order_id    text   NOT NULL REFERENCES order_stock (order_id),
    product_id  bigint NOT NULL REFERENCES products (id),
    quantity    bigint NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, product_id)
);
