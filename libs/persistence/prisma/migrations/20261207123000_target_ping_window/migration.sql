-- Heartbeat monitors (push checks): their period + grace (ms) as the check.lifecycle of config version
-- ping_window_version said it. Every ping counts with it, not with the schedule the ping carries: the receiving
-- status-ingest replica's, cached until it hears of a change, so after an edit from hourly to daily each ping through a
-- replica not yet told set a deadline an hour on (DOWN while the job ran daily). Used only while ping_window_version is
-- the target's config_version: a replica of the version before (a rolling upgrade, a rollback) applies lifecycles
-- without writing these columns, and leaves them behind. Nullable without a default: a catalogue change only, no
-- rewrite of the table. Null until the check's next configuration write (pings count with their own schedule until then).
ALTER TABLE "target_states" ADD COLUMN "ping_window_ms" BIGINT;
ALTER TABLE "target_states" ADD COLUMN "ping_window_version" INTEGER;
