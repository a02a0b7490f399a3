-- Host metrics history (issue 16): 1-minute rollups (avg and max per series and device) for the long
-- window, recomputed from raw host_metrics rows for the minutes marked dirty by the inserts.
-- A series row is keyed by a hash of (host, series, device) and its minute: host ids (256 characters)
-- and mount names (512) may together exceed what one btree index entry holds, a fixed-size hash never does.
-- (No semicolons in comments: the migration engine splits statements on them.)
CREATE TABLE "host_rollups_1m" (
    "series_key" UUID NOT NULL,
    "bucket" TIMESTAMPTZ(3) NOT NULL,
    "host_id" TEXT NOT NULL,
    "series" TEXT NOT NULL,
    "device" TEXT NOT NULL DEFAULT '',
    "count" INTEGER NOT NULL,
    "avg" DOUBLE PRECISION NOT NULL,
    "max" DOUBLE PRECISION NOT NULL,

    CONSTRAINT "host_rollups_1m_pkey" PRIMARY KEY ("series_key", "bucket")
);

CREATE INDEX "host_rollups_1m_host_id_bucket_idx" ON "host_rollups_1m"("host_id", "bucket");

CREATE INDEX "host_rollups_1m_bucket_idx" ON "host_rollups_1m"("bucket");

-- Minutes of a host with new raw rows since their last rollup.
CREATE TABLE "host_rollup_dirty" (
    "host_id" TEXT NOT NULL,
    "bucket" TIMESTAMPTZ(3) NOT NULL,
    "marked_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "host_rollup_dirty_pkey" PRIMARY KEY ("host_id", "bucket")
);

-- Samples stored before this migration get their rollups too.
INSERT INTO "host_rollup_dirty" ("host_id", "bucket")
    SELECT DISTINCT "host_id", date_trunc('minute', "sampled_at" AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' FROM "host_metrics"
    ON CONFLICT DO NOTHING;
