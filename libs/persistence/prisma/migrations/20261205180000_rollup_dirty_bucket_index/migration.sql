-- The rollup jobs pick the oldest marked minutes first (ORDER BY bucket LIMIT n), and the marks tables had no index
-- on bucket: every pick read and sorted the whole table (0.56 s a chunk of 1,000 with 400,000 marks, spilling to
-- disk), so a site with a backlog of marks got slower the further behind it was.
-- CONCURRENTLY, and alone in its file (it cannot run in a transaction block), IF NOT EXISTS (a retry after a failure
-- goes on): a plain CREATE INDEX would block every observation commit's marks for the whole build, and the
-- table is largest exactly when this is needed. host_rollup_dirty's index is the next migration.
CREATE INDEX CONCURRENTLY IF NOT EXISTS "rollup_dirty_bucket_idx" ON "rollup_dirty"("bucket");
