-- Money held by orders in flight counts toward the 10,000,000 limit until the order completes
-- (API.md "Users and balance"), so a refund, which is never refused, cannot push a balance over it.
-- balances.held: the sum of order_payments.held of the user's orders in flight, on the balance's
-- own row, so a charge reads it under the same lock as the balance. A deduction holds its amount;
-- a refund or the order's completion (order.completed) releases it. Deductions made before this
-- migration hold nothing (their orders are almost all completed; see README).
ALTER TABLE balances ADD COLUMN held bigint NOT NULL DEFAULT 0 CHECK (held >= 0);
ALTER TABLE order_payments ADD COLUMN held bigint NOT NULL DEFAULT 0 CHECK (held >= 0);
