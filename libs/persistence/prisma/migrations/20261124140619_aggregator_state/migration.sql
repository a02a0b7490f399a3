-- DropForeignKey
ALTER TABLE "heartbeat_runs" DROP CONSTRAINT "heartbeat_runs_monitor_id_fkey";

-- AlterTable
ALTER TABLE "heartbeat_runs" ADD COLUMN     "target_id" TEXT;

-- CreateTable
CREATE TABLE "target_states" (
    "target_id" TEXT NOT NULL,
    "kind" "target_kind" NOT NULL,
    "name" TEXT NOT NULL,
    "status" "target_status" NOT NULL DEFAULT 'UNKNOWN',
    "since" TIMESTAMPTZ(3),
    "last_seen" TIMESTAMPTZ(3),
    "last_latency_ms" DOUBLE PRECISION,
    "lifecycle" TEXT,
    "tags" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "labels" JSONB NOT NULL DEFAULT '{}',
    "seq" BIGINT NOT NULL DEFAULT 0,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "target_states_pkey" PRIMARY KEY ("target_id")
);

-- CreateTable
CREATE TABLE "target_location_states" (
    "target_id" TEXT NOT NULL,
    "location" TEXT NOT NULL,
    "status" "target_status" NOT NULL,
    "observed_at" TIMESTAMPTZ(3) NOT NULL,
    "last_seen" TIMESTAMPTZ(3) NOT NULL,
    "latency_ms" DOUBLE PRECISION,
    "detail" TEXT,
    "lifecycle" TEXT,
    "deadline_at" TIMESTAMPTZ(3),
    "expire_to" "target_status",
    "expire_reason" TEXT,
    "run_started_at" TIMESTAMPTZ(3),
    "run_id" TEXT,

    CONSTRAINT "target_location_states_pkey" PRIMARY KEY ("target_id","location")
);

-- CreateTable
CREATE TABLE "status_event_outbox" (
    "event_id" UUID NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "status_event_outbox_pkey" PRIMARY KEY ("event_id")
);

-- CreateTable
CREATE TABLE "rollup_dirty" (
    "target_id" TEXT NOT NULL,
    "location" TEXT NOT NULL,
    "bucket" TIMESTAMPTZ(3) NOT NULL,
    "marked_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "rollup_dirty_pkey" PRIMARY KEY ("target_id","location","bucket")
);

-- CreateTable
CREATE TABLE "host_metrics" (
    "id" BIGSERIAL NOT NULL,
    "message_id" UUID NOT NULL,
    "host_id" TEXT NOT NULL,
    "location" TEXT NOT NULL,
    "sampled_at" TIMESTAMPTZ(3) NOT NULL,
    "cpu_pct" DOUBLE PRECISION NOT NULL,
    "load1" DOUBLE PRECISION NOT NULL,
    "mem_used_bytes" DOUBLE PRECISION NOT NULL,
    "mem_total_bytes" DOUBLE PRECISION NOT NULL,
    "data" JSONB NOT NULL,

    CONSTRAINT "host_metrics_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "heartbeat_pings" (
    "id" BIGSERIAL NOT NULL,
    "message_id" UUID NOT NULL,
    "monitor_id" TEXT NOT NULL,
    "target_id" TEXT NOT NULL,
    "location" TEXT NOT NULL,
    "signal" TEXT NOT NULL,
    "run_id" TEXT,
    "received_at" TIMESTAMPTZ(3) NOT NULL,
    "body" TEXT,

    CONSTRAINT "heartbeat_pings_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "target_states_kind_idx" ON "target_states"("kind");

-- CreateIndex
CREATE INDEX "target_location_states_deadline_at_idx" ON "target_location_states"("deadline_at");

-- CreateIndex
CREATE UNIQUE INDEX "host_metrics_message_id_key" ON "host_metrics"("message_id");

-- CreateIndex
CREATE INDEX "host_metrics_host_id_sampled_at_idx" ON "host_metrics"("host_id", "sampled_at");

-- CreateIndex
CREATE INDEX "host_metrics_sampled_at_idx" ON "host_metrics"("sampled_at");

-- CreateIndex
CREATE UNIQUE INDEX "heartbeat_pings_message_id_key" ON "heartbeat_pings"("message_id");

-- CreateIndex
CREATE INDEX "heartbeat_pings_target_id_received_at_idx" ON "heartbeat_pings"("target_id", "received_at");

-- CreateIndex
CREATE INDEX "heartbeat_pings_received_at_idx" ON "heartbeat_pings"("received_at");
