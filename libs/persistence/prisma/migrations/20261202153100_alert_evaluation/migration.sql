-- Alert evaluation state (issue 18, writer: the aggregator replica holding the evaluator lease).
-- `alert_states`: one row per alert that is pending, firing or resolved (inactive alerts have no row).
-- `state_json` is the engine's whole state (libs/alerting AlertSeriesState) as JSON text (the engine's
-- keys hold NUL separators, which jsonb refuses), the other columns are copies for queries.
-- `alert_notification_groups`: the grouping scheduler's groups (one per channel and group labels) as
-- JSON text, so a restart neither re-sends nor forgets a group's wait.
-- Both are written in the transaction that queues the notifications they caused.
-- `alert_evaluator_epochs`: the fencing token of the evaluator lease. A new holder advances it, and
-- every decision transaction checks it FOR SHARE, so a replica that lost the lease cannot commit.
CREATE TABLE "alert_states" (
    "alert_key" TEXT NOT NULL,
    "rule_id" TEXT NOT NULL,
    "target_id" TEXT NOT NULL,
    "fingerprint" TEXT NOT NULL,
    "state" TEXT NOT NULL,
    "labels" JSONB NOT NULL DEFAULT '{}',
    "value" DOUBLE PRECISION,
    "active_at" TIMESTAMPTZ(3) NOT NULL,
    "fired_at" TIMESTAMPTZ(3),
    "resolved_at" TIMESTAMPTZ(3),
    "last_sent_at" TIMESTAMPTZ(3),
    "state_json" TEXT NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "alert_states_pkey" PRIMARY KEY ("alert_key")
);

CREATE INDEX "alert_states_state_idx" ON "alert_states"("state");
CREATE INDEX "alert_states_target_id_idx" ON "alert_states"("target_id");
CREATE INDEX "alert_states_fingerprint_idx" ON "alert_states"("fingerprint");

CREATE TABLE "alert_notification_groups" (
    "group_key" TEXT NOT NULL,
    "channel_id" TEXT NOT NULL,
    "group_json" TEXT NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "alert_notification_groups_pkey" PRIMARY KEY ("group_key")
);

CREATE TABLE "alert_evaluator_epochs" (
    "name" TEXT NOT NULL,
    "epoch" BIGINT NOT NULL,
    "holder" TEXT NOT NULL,
    "taken_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "alert_evaluator_epochs_pkey" PRIMARY KEY ("name")
);
