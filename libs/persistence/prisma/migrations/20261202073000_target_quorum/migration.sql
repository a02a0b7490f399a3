-- The consensus quorum of a check travels with its results, and the aggregator keeps it with the target
-- so the deadline sweeper judges the consensus the same way as the fold (issue 15).
-- (No semicolons in comments here: the migration engine splits statements on them.)
ALTER TABLE "target_states" ADD COLUMN "down_quorum_pct" SMALLINT;
