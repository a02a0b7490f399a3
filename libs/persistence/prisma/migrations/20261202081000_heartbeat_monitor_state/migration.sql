-- Heartbeat monitors become push checks (issue 15): heartbeat_monitors keeps the definition
-- and ping credential, written by sync-orchestrator only. The run state the aggregator
-- writes (last ping, last start) moves to a table of its own, so each table has one writer.
-- (No semicolons in comments: the migration engine splits statements on them.)
CREATE TABLE "heartbeat_monitor_state" (
    "monitor_id" UUID NOT NULL,
    "last_ping_at" TIMESTAMPTZ(3),
    "last_start_at" TIMESTAMPTZ(3),

    CONSTRAINT "heartbeat_monitor_state_pkey" PRIMARY KEY ("monitor_id")
);

INSERT INTO "heartbeat_monitor_state" ("monitor_id", "last_ping_at", "last_start_at")
    SELECT "id", "last_ping_at", "last_start_at" FROM "heartbeat_monitors"
    WHERE "last_ping_at" IS NOT NULL OR "last_start_at" IS NOT NULL;

ALTER TABLE "heartbeat_monitors" DROP COLUMN "last_ping_at", DROP COLUMN "last_start_at";
