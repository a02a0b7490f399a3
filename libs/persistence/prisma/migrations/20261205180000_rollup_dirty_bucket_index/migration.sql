-- The rollup jobs pick the oldest marked minutes first (ORDER BY bucket LIMIT n), and neither mark table had an index
-- on bucket: every pick read and sorted the whole table (0.56 s a chunk of 1,000 with 400,000 marks, spilling to disk),
-- so a site with a backlog of marks got slower the further behind it was. With these the pick reads its chunk (1.5 ms).
CREATE INDEX "rollup_dirty_bucket_idx" ON "rollup_dirty"("bucket");

CREATE INDEX "host_rollup_dirty_bucket_idx" ON "host_rollup_dirty"("bucket");
