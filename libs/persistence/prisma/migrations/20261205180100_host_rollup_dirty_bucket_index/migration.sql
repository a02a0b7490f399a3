-- The host rollup job's pick reads the oldest marked host minutes first, as the target rollup job's does (previous
-- migration): an index on bucket instead of a sort of every mark. CONCURRENTLY and alone in its file, for the same
-- reasons (host samples' commits mark minutes).
CREATE INDEX CONCURRENTLY IF NOT EXISTS "host_rollup_dirty_bucket_idx" ON "host_rollup_dirty"("bucket");
