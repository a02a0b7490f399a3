-- CreateEnum
CREATE TYPE "user_role" AS ENUM ('admin', 'operator', 'viewer');

-- CreateEnum
CREATE TYPE "target_kind" AS ENUM ('check', 'host', 'instance');

-- CreateEnum
CREATE TYPE "target_status" AS ENUM ('UP', 'DOWN', 'PARTIAL', 'STALE', 'PAUSED', 'UNKNOWN');

-- CreateTable
CREATE TABLE "users" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "username" TEXT NOT NULL,
    "password_hash" TEXT NOT NULL,
    "role" "user_role" NOT NULL,
    "token_version" INTEGER NOT NULL DEFAULT 0,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "users_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "sessions" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "user_id" UUID NOT NULL,
    "token_hash" TEXT NOT NULL,
    "expires_at" TIMESTAMPTZ(3) NOT NULL,
    "revoked_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "sessions_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "api_keys" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "name" TEXT NOT NULL,
    "prefix" TEXT NOT NULL,
    "key_hash" TEXT NOT NULL,
    "scopes" TEXT[],
    "allowed_cidrs" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "created_by" UUID,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_used_at" TIMESTAMPTZ(3),
    "revoked_at" TIMESTAMPTZ(3),

    CONSTRAINT "api_keys_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "checks" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "name" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "interval_seconds" INTEGER NOT NULL DEFAULT 30,
    "timeout_seconds" INTEGER NOT NULL DEFAULT 10,
    "config" JSONB NOT NULL DEFAULT '{}',
    "locations" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "tags" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "enabled" BOOLEAN NOT NULL DEFAULT true,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "checks_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "config_versions" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "version" INTEGER NOT NULL,
    "hash" TEXT NOT NULL,
    "snapshot" JSONB NOT NULL,
    "actor" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "config_versions_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "audit_log" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "actor" TEXT NOT NULL,
    "action" TEXT NOT NULL,
    "subject" TEXT,
    "details" JSONB,
    "at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "audit_log_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "targets" (
    "id" TEXT NOT NULL,
    "kind" "target_kind" NOT NULL,
    "name" TEXT NOT NULL,
    "tags" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "labels" JSONB NOT NULL DEFAULT '{}',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "targets_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "status_updates" (
    "id" BIGSERIAL NOT NULL,
    "message_id" UUID NOT NULL,
    "update_id" TEXT NOT NULL,
    "target_id" TEXT NOT NULL,
    "instance_id" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "lifecycle_status" TEXT NOT NULL,
    "status" "target_status" NOT NULL,
    "source" TEXT,
    "location" TEXT,
    "occurred_at" TIMESTAMPTZ(3) NOT NULL,
    "received_at" TIMESTAMPTZ(3) NOT NULL,
    "labels" JSONB,
    "message" TEXT,
    "metadata" JSONB,

    CONSTRAINT "status_updates_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "check_results" (
    "id" BIGSERIAL NOT NULL,
    "message_id" UUID NOT NULL,
    "check_id" TEXT NOT NULL,
    "target_id" TEXT NOT NULL,
    "location" TEXT NOT NULL,
    "ok" BOOLEAN NOT NULL,
    "latency_ms" DOUBLE PRECISION,
    "failure_reason" TEXT,
    "metadata" JSONB,
    "occurred_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "check_results_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "rollups_1m" (
    "target_id" TEXT NOT NULL,
    "location" TEXT NOT NULL,
    "bucket" TIMESTAMPTZ(3) NOT NULL,
    "count" INTEGER NOT NULL,
    "ok_count" INTEGER NOT NULL,
    "min_latency_ms" DOUBLE PRECISION,
    "avg_latency_ms" DOUBLE PRECISION,
    "max_latency_ms" DOUBLE PRECISION,
    "p95_latency_ms" DOUBLE PRECISION,

    CONSTRAINT "rollups_1m_pkey" PRIMARY KEY ("target_id","location","bucket")
);

-- CreateTable
CREATE TABLE "status_events" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "target_id" TEXT NOT NULL,
    "location" TEXT,
    "from_status" "target_status",
    "to_status" "target_status" NOT NULL,
    "reason" TEXT,
    "occurred_at" TIMESTAMPTZ(3) NOT NULL,
    "sequence" BIGINT NOT NULL,

    CONSTRAINT "status_events_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "heartbeat_monitors" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "target_id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "token_hash" TEXT NOT NULL,
    "period_seconds" INTEGER NOT NULL,
    "grace_seconds" INTEGER NOT NULL,
    "max_runtime_seconds" INTEGER,
    "last_ping_at" TIMESTAMPTZ(3),
    "last_start_at" TIMESTAMPTZ(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "heartbeat_monitors_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "heartbeat_runs" (
    "id" UUID NOT NULL DEFAULT gen_random_uuid(),
    "monitor_id" UUID NOT NULL,
    "started_at" TIMESTAMPTZ(3),
    "finished_at" TIMESTAMPTZ(3),
    "duration_ms" INTEGER,
    "outcome" TEXT,

    CONSTRAINT "heartbeat_runs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "processed_messages" (
    "message_id" UUID NOT NULL,
    "consumer" TEXT NOT NULL,
    "processed_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "processed_messages_pkey" PRIMARY KEY ("consumer","message_id")
);

-- CreateIndex
CREATE UNIQUE INDEX "users_username_key" ON "users"("username");

-- CreateIndex
CREATE UNIQUE INDEX "sessions_token_hash_key" ON "sessions"("token_hash");

-- CreateIndex
CREATE INDEX "sessions_user_id_idx" ON "sessions"("user_id");

-- CreateIndex
CREATE INDEX "sessions_expires_at_idx" ON "sessions"("expires_at");

-- CreateIndex
CREATE INDEX "api_keys_prefix_idx" ON "api_keys"("prefix");

-- CreateIndex
CREATE UNIQUE INDEX "config_versions_version_key" ON "config_versions"("version");

-- CreateIndex
CREATE INDEX "audit_log_at_idx" ON "audit_log"("at");

-- CreateIndex
CREATE INDEX "audit_log_subject_at_idx" ON "audit_log"("subject", "at");

-- CreateIndex
CREATE INDEX "targets_kind_idx" ON "targets"("kind");

-- CreateIndex
CREATE UNIQUE INDEX "status_updates_message_id_key" ON "status_updates"("message_id");

-- CreateIndex
CREATE INDEX "status_updates_target_id_occurred_at_idx" ON "status_updates"("target_id", "occurred_at");

-- CreateIndex
CREATE INDEX "status_updates_occurred_at_idx" ON "status_updates"("occurred_at");

-- CreateIndex
CREATE UNIQUE INDEX "check_results_message_id_key" ON "check_results"("message_id");

-- CreateIndex
CREATE INDEX "check_results_target_id_occurred_at_idx" ON "check_results"("target_id", "occurred_at");

-- CreateIndex
CREATE INDEX "check_results_occurred_at_idx" ON "check_results"("occurred_at");

-- CreateIndex
CREATE INDEX "rollups_1m_bucket_idx" ON "rollups_1m"("bucket");

-- CreateIndex
CREATE INDEX "status_events_target_id_occurred_at_idx" ON "status_events"("target_id", "occurred_at");

-- CreateIndex
CREATE INDEX "status_events_occurred_at_idx" ON "status_events"("occurred_at");

-- CreateIndex
CREATE UNIQUE INDEX "status_events_target_id_sequence_key" ON "status_events"("target_id", "sequence");

-- CreateIndex
CREATE UNIQUE INDEX "heartbeat_monitors_token_hash_key" ON "heartbeat_monitors"("token_hash");

-- CreateIndex
CREATE INDEX "heartbeat_monitors_target_id_idx" ON "heartbeat_monitors"("target_id");

-- CreateIndex
CREATE INDEX "heartbeat_runs_monitor_id_started_at_idx" ON "heartbeat_runs"("monitor_id", "started_at");

-- CreateIndex
CREATE INDEX "processed_messages_processed_at_idx" ON "processed_messages"("processed_at");

-- AddForeignKey
ALTER TABLE "sessions" ADD CONSTRAINT "sessions_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "api_keys" ADD CONSTRAINT "api_keys_created_by_fkey" FOREIGN KEY ("created_by") REFERENCES "users"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "heartbeat_runs" ADD CONSTRAINT "heartbeat_runs_monitor_id_fkey" FOREIGN KEY ("monitor_id") REFERENCES "heartbeat_monitors"("id") ON DELETE CASCADE ON UPDATE CASCADE;
