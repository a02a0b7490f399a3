-- Alert notification delivery (issue 18, writer: aggregator). `alert_delivery_queue` holds each message
-- still to send to a channel, with its next attempt time, so a retry schedule survives a restart, a replica
-- claims due rows for a lease (claimed_until) with SKIP LOCKED, so one replica sends each. Rows of one
-- (channel, group) go out in order (seq): a "resolved" never overtakes the "firing" it closes. The message
-- is stored as the notification (alerts, labels, rendered annotations), never as the request: the request
-- is built at each attempt with the channel's current secrets, so no secret is stored here.
-- `alert_deliveries` logs every attempt (and test-sends): outcome, HTTP status, bounded error text.
CREATE TABLE "alert_delivery_queue" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "seq" BIGSERIAL NOT NULL,
    "channel_id" TEXT NOT NULL,
    "group_key" TEXT NOT NULL,
    "group_hash" TEXT NOT NULL,
    "notification" JSONB NOT NULL,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "next_attempt_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "claimed_until" TIMESTAMPTZ(3),
    "claimed_by" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "alert_delivery_queue_pkey" PRIMARY KEY ("id")
);

CREATE INDEX "alert_delivery_queue_next_attempt_at_idx" ON "alert_delivery_queue"("next_attempt_at");
CREATE INDEX "alert_delivery_queue_channel_id_group_hash_seq_idx" ON "alert_delivery_queue"("channel_id", "group_hash", "seq");

CREATE TABLE "alert_deliveries" (
    "id" BIGSERIAL NOT NULL,
    "delivery_id" UUID NOT NULL,
    "channel_id" TEXT NOT NULL,
    "channel_type" TEXT NOT NULL,
    "group_key" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "attempt" INTEGER NOT NULL,
    "outcome" TEXT NOT NULL,
    "http_status" INTEGER,
    "error" TEXT,
    "duration_ms" INTEGER NOT NULL,
    "next_attempt_at" TIMESTAMPTZ(3),
    "test" BOOLEAN NOT NULL DEFAULT false,
    "at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "alert_deliveries_pkey" PRIMARY KEY ("id")
);

CREATE INDEX "alert_deliveries_channel_id_at_idx" ON "alert_deliveries"("channel_id", "at" DESC);
CREATE INDEX "alert_deliveries_delivery_id_attempt_idx" ON "alert_deliveries"("delivery_id", "attempt");
CREATE INDEX "alert_deliveries_at_idx" ON "alert_deliveries"("at");
