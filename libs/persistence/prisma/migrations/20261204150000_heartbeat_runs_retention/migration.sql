-- Heartbeat runs were never trimmed: one row per run of every monitor, forever. Retention now deletes runs that
-- finished before the rollup window (HISTORY_ROLLUP_RETENTION_DAYS, as rollups), in small batches by this index.
-- Every run is written with its finish time (a ping that ends it, or the sweep that times it out).
-- CONCURRENTLY, and alone in its file (it cannot run in a transaction block): the table may be large by now, and a
-- plain CREATE INDEX would block the aggregator's inserts of runs (inside its observation commits) for the whole build.
CREATE INDEX CONCURRENTLY IF NOT EXISTS "heartbeat_runs_finished_at_idx" ON "heartbeat_runs"("finished_at");
