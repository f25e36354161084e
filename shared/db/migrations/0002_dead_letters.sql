-- Dead letters: records a consumer could not process (undecodable, or failing again and again
-- for a reason other than an unreachable database or broker), set aside so their partition goes
-- on. Kept with everything needed to deliver the record again (key, headers, value), written in
-- the same transaction as their copy on the dead-letter topic (outbox) and any failure reply.
-- failed_at has millisecond precision: it is part of the listing cursor, which the gateway
-- rebuilds from an item's RFC 3339 (milliseconds) text.
CREATE TABLE dead_letters (
    id             bigserial   PRIMARY KEY,
    consumer_group text        NOT NULL,
    topic          text        NOT NULL,
    kafka_partition integer    NOT NULL,
    kafka_offset   bigint      NOT NULL,
    msg_key        bytea,
    headers        jsonb       NOT NULL,  -- [[base64 name, base64 value], ...] as received
    payload        bytea,
    event_type     text,
    event_id       uuid,
    error_kind     text        NOT NULL,  -- undecodable | deterministic
    error          text        NOT NULL,
    failed_at      timestamptz NOT NULL DEFAULT date_trunc('milliseconds', clock_timestamp()),
    replayed_at    timestamptz
);

CREATE INDEX dead_letters_newest_idx ON dead_letters (failed_at DESC, id DESC);
