-- Idempotency keys are scoped to the user (API.md "Conventions"): two users who pick the same
-- key do not collide. Existing keys take their order's user.
ALTER TABLE idempotency_keys ADD COLUMN user_id bigint;
UPDATE idempotency_keys k SET user_id = o.user_id FROM orders o WHERE o.order_id = k.order_id;
DELETE FROM idempotency_keys WHERE user_id IS NULL;
ALTER TABLE idempotency_keys ALTER COLUMN user_id SET NOT NULL;
ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey;
ALTER TABLE idempotency_keys ADD PRIMARY KEY (user_id, key);

-- An order's discount_amount and paid_amount are what its completed payment kept: 0 while
-- PENDING and on a FAILED order (refunded). Rows written before this rule are corrected, and the
-- rule is a database fact from now on.
UPDATE orders SET discount_amount = 0, paid_amount = 0
WHERE status <> 'COMPLETED' AND (discount_amount <> 0 OR paid_amount <> 0);
ALTER TABLE orders ADD CONSTRAINT orders_amounts_kept_only_when_completed
    CHECK (status = 'COMPLETED' OR (discount_amount = 0 AND paid_amount = 0));
