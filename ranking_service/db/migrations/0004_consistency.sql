-- Every order counted in the statistics, never purged: a late copy of order.completed (even after
-- its inbox row is gone, 72 h) or another event of the same order is never counted twice.
CREATE TABLE counted_orders (
    order_id    text        PRIMARY KEY,
    counted_at  timestamptz NOT NULL DEFAULT now()
);
