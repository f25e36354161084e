-- Sales statistics kept from order.completed events, per calendar day (service time zone).
CREATE TABLE daily_product_sales (
    day          date   NOT NULL,
    product_id   bigint NOT NULL,
    quantity     bigint NOT NULL,
    order_count  bigint NOT NULL,
    PRIMARY KEY (day, product_id)
);

-- The latest name seen for each product (by completed_at of the order that carried it).
CREATE TABLE product_names (
    product_id  bigint      PRIMARY KEY,
    name        text        NOT NULL,
    named_at    timestamptz NOT NULL
);

-- The daily batch's output: each closed day's ranking, frozen when the day is rolled up.
CREATE TABLE ranking_snapshots (
    day          date   NOT NULL,
    rank         integer NOT NULL,
    product_id   bigint NOT NULL,
    name         text   NOT NULL,
    quantity     bigint NOT NULL,
    order_count  bigint NOT NULL,
    PRIMARY KEY (day, rank)
);

-- One row per rolled-up day: the scheduled batch inserts it once; a rebuild bumps runs.
CREATE TABLE batch_runs (
    day          date        PRIMARY KEY,
    ran_at       timestamptz NOT NULL,
    instance_id  text        NOT NULL,
    products     integer     NOT NULL,
    runs         integer     NOT NULL DEFAULT 1
);
