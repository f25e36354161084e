-- A saga step's deadline runs from the broker's acknowledgement of its command (issue 14): while
-- the command waits in the outbox, ``deadline`` is NULL and ``send_id`` holds the event id of the
-- command whose acknowledgement arms it, ``wait_s`` seconds later, on the database's clock (the
-- outbox relay's hook, order_service/db/repository.py ARM_SENT). ``attempts`` counts acknowledged
-- sends only.
ALTER TABLE sagas
    ADD COLUMN send_id uuid,
    ADD COLUMN wait_s  double precision NOT NULL DEFAULT 0;
