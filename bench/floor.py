"""The database floor: pgbench doing the database work of one order's payment saga (no coupon).

One pgbench "transaction" = the statements the services run for one order, as separate
transactions like the services do them (each also writes its inbox row and its outbox row,
and the relay deletes the published outbox rows):

1. order_service POST /orders: idempotency key, order, line, saga, outbox (DeductBalance).
2. balance_service Deduct: inbox, conditional balance update, order_payments, history, outbox (reply).
3. order_service reply: inbox, saga update, outbox (DeductStock).
4. catalog_service DeductStock: inbox, claim order_stock, lock product, update stock, line, outbox.
5. order_service reply: inbox, saga + order COMPLETED, outbox (order.completed).
6. ranking_service: inbox, upsert of the day's product statistics.
7. the outbox relays: delete the 5 published rows.

It runs in a scratch database created for it (and dropped after), so it never touches a service's
data. ``python -m bench floor`` prints its saga/s; scenario reports divide by it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

SCHEMA = """
CREATE TABLE outbox (id bigserial PRIMARY KEY, topic text NOT NULL, msg_key text NOT NULL, event_id uuid NOT NULL,
  event_type text NOT NULL, headers jsonb NOT NULL, payload bytea NOT NULL, created_at timestamptz NOT NULL DEFAULT now(),
  attempts integer NOT NULL DEFAULT 0, last_error text);
CREATE TABLE inbox (consumer text NOT NULL, message_id uuid NOT NULL, processed_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (consumer, message_id));
CREATE TABLE orders (order_id text PRIMARY KEY, user_id bigint NOT NULL, status text NOT NULL, total_amount bigint NOT NULL,
  discount_amount bigint NOT NULL DEFAULT 0, paid_amount bigint NOT NULL DEFAULT 0, user_coupon_id bigint, failure_code text,
  created_at timestamptz NOT NULL DEFAULT now(), completed_at timestamptz, finished_at timestamptz);
CREATE INDEX orders_user_idx ON orders (user_id, created_at DESC, order_id DESC);
CREATE TABLE order_items (order_id text NOT NULL REFERENCES orders, product_id bigint NOT NULL, name text NOT NULL,
  unit_price bigint NOT NULL, quantity integer NOT NULL, PRIMARY KEY (order_id, product_id));
CREATE TABLE sagas (order_id text PRIMARY KEY REFERENCES orders, step text NOT NULL, attempts integer NOT NULL DEFAULT 0,
  deadline timestamptz, data jsonb NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX sagas_deadline_idx ON sagas (deadline) WHERE deadline IS NOT NULL;
CREATE TABLE idempotency_keys (key text PRIMARY KEY, request_hash text NOT NULL, order_id text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE balances (user_id bigint PRIMARY KEY, balance bigint NOT NULL CHECK (balance >= 0),
  updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE balance_history (id bigserial PRIMARY KEY, user_id bigint NOT NULL, type text NOT NULL, amount bigint NOT NULL,
  balance_after bigint NOT NULL, order_id text, created_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX balance_history_user_id_idx ON balance_history (user_id, id DESC);
CREATE TABLE order_payments (order_id text PRIMARY KEY, user_id bigint, amount bigint NOT NULL, status text NOT NULL,
  balance_after bigint, failure_code text, reason text NOT NULL DEFAULT '', created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE products (id bigserial PRIMARY KEY, name text NOT NULL, price bigint NOT NULL, stock bigint NOT NULL,
  status text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE order_stock (order_id text PRIMARY KEY, status text NOT NULL, failure_code text, failure_product_id bigint,
  created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE order_stock_lines (order_id text NOT NULL REFERENCES order_stock, product_id bigint NOT NULL REFERENCES products,
  quantity bigint NOT NULL, PRIMARY KEY (order_id, product_id));
CREATE TABLE product_daily (day date NOT NULL, product_id bigint NOT NULL, quantity bigint NOT NULL, orders bigint NOT NULL,
  PRIMARY KEY (day, product_id));
INSERT INTO balances (user_id, balance) SELECT g, 1000000000000 FROM generate_series(1, 1000) g;
INSERT INTO products (name, price, stock, status) SELECT 'p' || g, 1000, 1000000000000, 'SELLABLE' FROM generate_series(1, 100) g;
"""

SCRIPT = r"""
\set uid random(1, 1000)
\set pid random(1, 100)
\set n random(1, 1000000000000)
BEGIN;
INSERT INTO idempotency_keys (key, request_hash, order_id) VALUES ('k' || :n || ':client_id', 'h', :n || '-' || :client_id);
INSERT INTO orders (order_id, user_id, status, total_amount, paid_amount) VALUES (:n || '-' || :client_id, :uid, 'PENDING', 1000, 1000);
INSERT INTO order_items VALUES (:n || '-' || :client_id, :pid, 'p', 1000, 1);
INSERT INTO sagas (order_id, step, deadline, data) VALUES (:n || '-' || :client_id, 'DEDUCTING_BALANCE', now() + interval '5 s', '{"step": "DEDUCTING_BALANCE", "amount": 1000}');
INSERT INTO outbox (topic, msg_key, event_id, event_type, headers, payload) VALUES ('saga.balance.commands', :n || '-' || :client_id, gen_random_uuid(), 'DeductBalance', '{"event-type": "DeductBalance"}', '\x7b7d');
COMMIT;
BEGIN;
INSERT INTO inbox (consumer, message_id) VALUES ('balance', gen_random_uuid());
WITH upd AS (UPDATE balances SET balance = balance - 1000, updated_at = now() WHERE user_id = :uid AND balance >= 1000 RETURNING balance),
     pay AS (INSERT INTO order_payments (order_id, user_id, amount, status, balance_after) SELECT :n || '-' || :client_id, :uid, 1000, 'DEDUCTED', balance FROM upd)
INSERT INTO balance_history (user_id, type, amount, balance_after, order_id) SELECT :uid, 'USE', 1000, balance, :n || '-' || :client_id FROM upd;
INSERT INTO outbox (topic, msg_key, event_id, event_type, headers, payload) VALUES ('saga.replies', :n || '-' || :client_id, gen_random_uuid(), 'BalanceDeducted', '{"event-type": "BalanceDeducted"}', '\x7b7d');
COMMIT;
BEGIN;
INSERT INTO inbox (consumer, message_id) VALUES ('order-saga', gen_random_uuid());
SELECT data FROM sagas WHERE order_id = :n || '-' || :client_id FOR UPDATE;
UPDATE sagas SET step = 'DEDUCTING_STOCK', data = '{"step": "DEDUCTING_STOCK"}', deadline = now() + interval '5 s', updated_at = now() WHERE order_id = :n || '-' || :client_id;
INSERT INTO outbox (topic, msg_key, event_id, event_type, headers, payload) VALUES ('saga.stock.commands', :n || '-' || :client_id, gen_random_uuid(), 'DeductStock', '{"event-type": "DeductStock"}', '\x7b7d');
COMMIT;
BEGIN;
INSERT INTO inbox (consumer, message_id) VALUES ('catalog', gen_random_uuid());
INSERT INTO order_stock (order_id, status) VALUES (:n || '-' || :client_id, 'DEDUCTED') ON CONFLICT DO NOTHING;
SELECT id, stock, status FROM products WHERE id = ANY(ARRAY[:pid]::bigint[]) ORDER BY id FOR UPDATE;
WITH u AS (UPDATE products SET stock = stock - 1, updated_at = now() WHERE id = :pid RETURNING id)
INSERT INTO order_stock_lines VALUES (:n || '-' || :client_id, :pid, 1);
INSERT INTO outbox (topic, msg_key, event_id, event_type, headers, payload) VALUES ('saga.replies', :n || '-' || :client_id, gen_random_uuid(), 'StockDeducted', '{"event-type": "StockDeducted"}', '\x7b7d');
COMMIT;
BEGIN;
INSERT INTO inbox (consumer, message_id) VALUES ('order-saga', gen_random_uuid());
SELECT data FROM sagas WHERE order_id = :n || '-' || :client_id FOR UPDATE;
UPDATE sagas SET step = 'DONE', data = '{"step": "DONE"}', deadline = NULL, updated_at = now() WHERE order_id = :n || '-' || :client_id;
UPDATE orders SET status = 'COMPLETED', completed_at = now(), finished_at = now() WHERE order_id = :n || '-' || :client_id;
SELECT pg_notify('order_outcome', :n || '-' || :client_id);
INSERT INTO outbox (topic, msg_key, event_id, event_type, headers, payload) VALUES ('order.completed', :n || '-' || :client_id, gen_random_uuid(), 'OrderCompleted', '{"event-type": "OrderCompleted"}', '\x7b7d');
COMMIT;
BEGIN;
INSERT INTO inbox (consumer, message_id) VALUES ('ranking', gen_random_uuid());
INSERT INTO product_daily VALUES (current_date, :pid, 1, 1) ON CONFLICT (day, product_id) DO UPDATE SET quantity = product_daily.quantity + 1, orders = product_daily.orders + 1;
COMMIT;
DELETE FROM outbox WHERE msg_key = :n || '-' || :client_id;
"""

PGBIN = Path("/usr/lib/postgresql/15/bin")


def pg_tool(name: str) -> str:
    found = shutil.which(name)
    return found or str(PGBIN / name)


def run_floor(admin_dsn: str, *, clients: int = 8, seconds: int = 10, suffix: str = "floor") -> dict[str, float | int]:
    """Create a scratch database, run the saga script with pgbench, drop it; return sagas/s."""
    base, _, _ = admin_dsn.rpartition("/")
    db = f"bench_floor_{suffix}"
    dsn = f"{base}/{db}"
    psql = pg_tool("psql") if (PGBIN / "psql").exists() or shutil.which("psql") else None
    env = {**os.environ}

    def sql(target: str, text: str) -> None:
        if psql:
            subprocess.run(
                [psql, "-q", "-v", "ON_ERROR_STOP=1", target, "-c", text], check=True, env=env, capture_output=True
            )
        else:  # pragma: no cover
            raise SystemExit("psql not found")

    sql(admin_dsn, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    sql(admin_dsn, f'CREATE DATABASE "{db}"')
    try:
        subprocess.run(
            [psql, "-q", "-v", "ON_ERROR_STOP=1", dsn],
            input=SCHEMA,
            text=True,
            check=True,
            env=env,
            capture_output=True,
        )
        with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as f:
            f.write(SCRIPT)
            script = f.name
        out = subprocess.run(
            [pg_tool("pgbench"), "-n", "-c", str(clients), "-j", "2", "-T", str(seconds), "-f", script, dsn],
            capture_output=True,
            text=True,
            env=env,
        )
        os.unlink(script)
        if out.returncode != 0:
            raise RuntimeError(f"pgbench failed: {out.stderr[-2000:]}")
        m = re.search(r"tps = ([\d.]+)", out.stdout)
        lat = re.search(r"latency average = ([\d.]+) ms", out.stdout)
        done = re.search(r"number of transactions actually processed: (\d+)", out.stdout)
        return {
            "sagas_per_s": float(m.group(1)) if m else 0.0,
            "latency_avg_ms": float(lat.group(1)) if lat else 0.0,
            "sagas": int(done.group(1)) if done else 0,
            "clients": clients,
            "seconds": seconds,
        }
    finally:
        sql(admin_dsn, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
