-- A check's lifecycle in the configuration reaches the aggregator as check.lifecycle (issue 15).
-- target_states keeps, per check target: whether it is paused (results then leave its status alone),
-- the config version of the last lifecycle message applied (older ones change nothing), and when it
-- was deleted (a tombstone: no locations, no live state, and a late result never revives it).
-- config_changed_outbox carries the lifecycle messages of the write beside its config.changed, so
-- both leave through the same confirmed relay, in version order, after a crash too.
-- (No semicolons in comments here: the migration engine splits statements on them.)
ALTER TABLE "target_states" ADD COLUMN "paused" BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE "target_states" ADD COLUMN "config_version" INTEGER;
ALTER TABLE "target_states" ADD COLUMN "deleted_at" TIMESTAMPTZ(3);
ALTER TABLE "config_changed_outbox" ADD COLUMN "lifecycle" JSONB;
