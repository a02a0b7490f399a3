-- Status-change subscriptions (issue 18, SPEC §7). Writer of status_subscriptions: sync-orchestrator,
-- through the versioned and audited config path (area subscriptions), outside snapshots and the config hash
-- like silences. The signing secret sealed (AES-256-GCM, context subscription:<id>:secret), never answered.
CREATE TABLE "status_subscriptions" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "spec" JSONB NOT NULL,
    "secret" TEXT NOT NULL,
    "version" INTEGER NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "status_subscriptions_pkey" PRIMARY KEY ("id")
);

-- Writer: aggregator. One row per subscription and status event (the pair is unique: a redelivered
-- event queues nothing twice), its frozen body, where it stands, and its claim by a replica's worker.
CREATE TABLE "subscription_deliveries" (
    "id" BIGSERIAL NOT NULL,
    "subscription_id" TEXT NOT NULL,
    "event_id" TEXT NOT NULL,
    "target_id" TEXT NOT NULL,
    "body" TEXT NOT NULL,
    "state" TEXT NOT NULL DEFAULT 'pending',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "next_attempt_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "claimed_by" TEXT,
    "claimed_until" TIMESTAMPTZ(3),
    "last_error" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finished_at" TIMESTAMPTZ(3),

    CONSTRAINT "subscription_deliveries_pkey" PRIMARY KEY ("id")
);

CREATE UNIQUE INDEX "subscription_deliveries_subscription_id_event_id_key" ON "subscription_deliveries"("subscription_id", "event_id");
CREATE INDEX "subscription_deliveries_due_idx" ON "subscription_deliveries"("next_attempt_at") WHERE "state" = 'pending';
CREATE INDEX "subscription_deliveries_created_at_idx" ON "subscription_deliveries"("created_at");

-- The delivery log: one row per attempt (delivered, retry or failed), with the answer's status and error.
CREATE TABLE "subscription_delivery_attempts" (
    "id" BIGSERIAL NOT NULL,
    "delivery_id" BIGINT NOT NULL,
    "attempt" INTEGER NOT NULL,
    "at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "outcome" TEXT NOT NULL,
    "http_status" INTEGER,
    "error" TEXT,
    "duration_ms" INTEGER NOT NULL,

    CONSTRAINT "subscription_delivery_attempts_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "subscription_delivery_attempts_delivery_id_fkey" FOREIGN KEY ("delivery_id") REFERENCES "subscription_deliveries"("id") ON DELETE CASCADE
);

CREATE INDEX "subscription_delivery_attempts_delivery_id_idx" ON "subscription_delivery_attempts"("delivery_id");
