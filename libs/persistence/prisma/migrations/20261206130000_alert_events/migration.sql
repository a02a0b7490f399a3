-- Alert history (SPEC §3 and §7): every state change of an alert, written in the alert evaluator's decision
-- transaction with an outbox row, published as alert.state-changed once the broker confirms (the outbox row is then
-- deleted). Kept for the rollup window by retention. Nothing to backfill: history starts with this version.

-- CreateTable
CREATE TABLE "alert_events" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "rule_id" TEXT NOT NULL,
    "target_id" TEXT NOT NULL,
    "fingerprint" TEXT NOT NULL,
    "from_state" TEXT NOT NULL,
    "to_state" TEXT NOT NULL,
    "labels" JSONB NOT NULL DEFAULT '{}',
    "value" DOUBLE PRECISION,
    "occurred_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "alert_events_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "alert_event_outbox" (
    "event_id" UUID NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "alert_event_outbox_pkey" PRIMARY KEY ("event_id")
);

-- CreateIndex
CREATE INDEX "alert_events_occurred_at_id_idx" ON "alert_events"("occurred_at", "id");

-- CreateIndex
CREATE INDEX "alert_events_target_id_occurred_at_idx" ON "alert_events"("target_id", "occurred_at");

-- CreateIndex
CREATE INDEX "alert_events_rule_id_occurred_at_idx" ON "alert_events"("rule_id", "occurred_at");

-- AddForeignKey
ALTER TABLE "alert_event_outbox" ADD CONSTRAINT "alert_event_outbox_event_id_fkey" FOREIGN KEY ("event_id") REFERENCES "alert_events"("id") ON DELETE CASCADE ON UPDATE CASCADE;
