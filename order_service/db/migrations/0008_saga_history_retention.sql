-- The saga history is kept for ORDER_SAGA_HISTORY_RETENTION_HOURS (30 days), then purged by the
-- retention job (order_service/db/history.py SAGA_HISTORY). A BRIN index on `at` lets the purge
-- find old rows without reading the table: the rows are appended in time order, so each block range
-- covers a narrow span of time. It costs next to nothing on insert, unlike a B-tree.
CREATE INDEX saga_history_at_brin ON saga_history USING brin (at);
