-- The saga view (API.md "Operations"): what happened to each order's saga, oldest first, and
-- the unfinished sagas by age.
--
-- saga_history gets its rows from the statements that already run (POST /orders' one insert,
-- the reply batch's one write, the sweeper's write): no extra round trip. No foreign key: every
-- row is written together with its saga, and a key check would cost a lookup per row.
CREATE TABLE saga_history (
    id        bigserial   PRIMARY KEY,
    order_id  uuid        NOT NULL,
    at        timestamptz NOT NULL,
    kind      text        NOT NULL,
    name      text        NOT NULL,
    detail    jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX saga_history_order_idx ON saga_history (order_id, id);

-- When the saga started (the order's creation time), the key of GET /admin/sagas (oldest first).
ALTER TABLE sagas ADD COLUMN started_at timestamptz;
UPDATE sagas s SET started_at = o.created_at FROM orders o WHERE o.order_id = s.order_id;
ALTER TABLE sagas ALTER COLUMN started_at SET DEFAULT now(), ALTER COLUMN started_at SET NOT NULL;
CREATE INDEX sagas_unfinished_idx ON sagas (started_at, order_id) WHERE step NOT IN ('DONE', 'FAILED');
