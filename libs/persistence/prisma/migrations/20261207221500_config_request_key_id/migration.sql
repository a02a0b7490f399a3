-- A client's Idempotency-Key reused with another body (draft-ietf-httpapi-idempotency-key-header: 422).
-- A keyed write's request id hashes the key, method and params (the body too), so a retry with the
-- same body finds its answer. key_id hashes the key, method and caller alone: kept with the answer,
-- unique while the row is (a day), so the same key sent with another body finds the first request
-- and is refused. Null for writes without a key (and for rows from before it).
-- (No semicolons in comments: the migration engine splits statements on them.)
ALTER TABLE "config_requests" ADD COLUMN "key_id" UUID;

CREATE UNIQUE INDEX "config_requests_key_id_key" ON "config_requests"("key_id");
