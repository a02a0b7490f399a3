-- Sparklines of many targets (issue 17): the samples that carried a latency, per rollup (avg_latency_ms is
-- their mean, so a mean over locations weighs each by this, not by count, which includes failures without
-- a latency). NULL on rows written before: read as count until the bucket is recomputed or expires.
ALTER TABLE "rollups_1m" ADD COLUMN "latency_count" INTEGER;

-- Many targets' last hour in one statement: the primary key (target_id, location, bucket) cannot serve a
-- bucket range without the location, so a read for 100 targets scanned every location's whole retention
-- or the whole fleet's hour. This serves it directly.
CREATE INDEX "rollups_1m_target_id_bucket_idx" ON "rollups_1m"("target_id", "bucket");
