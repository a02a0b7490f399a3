-- Sparklines of many targets (issue 17): the samples that carried a latency, per rollup (avg_latency_ms is
-- their mean, so a mean over locations weighs each by this, not by count, which includes failures without
-- a latency). NULL on rows written before: read as count until the bucket is recomputed or expires.
-- A nullable column without a default: no table rewrite, the lock is held only for the catalog change.
ALTER TABLE "rollups_1m" ADD COLUMN "latency_count" INTEGER;
