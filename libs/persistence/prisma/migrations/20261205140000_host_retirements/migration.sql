-- Hosts taken out of service on request (DELETE /api/v1/hosts/{id} → host.retire → the aggregator): who retired
-- which host and when. The message id is the retirement's idempotency key (a redelivery is no second retirement,
-- which after the host came back would retire it again), as for every other observation the aggregator folds.
-- Trimmed with the rollup window: the host's history outlives its raw rows, and so does the record of its end.
CREATE TABLE "host_retirements" (
    "id" BIGSERIAL NOT NULL,
    "message_id" UUID NOT NULL,
    "host_id" TEXT NOT NULL,
    "retired_at" TIMESTAMPTZ(3) NOT NULL,
    "actor_id" TEXT NOT NULL,
    "actor_name" TEXT NOT NULL,
    "received_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "host_retirements_pkey" PRIMARY KEY ("id")
);

CREATE UNIQUE INDEX "host_retirements_message_id_key" ON "host_retirements"("message_id");

CREATE INDEX "host_retirements_host_id_retired_at_idx" ON "host_retirements"("host_id", "retired_at");

CREATE INDEX "host_retirements_retired_at_idx" ON "host_retirements"("retired_at");
