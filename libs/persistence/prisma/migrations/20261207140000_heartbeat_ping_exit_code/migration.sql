-- Heartbeat pings sent as `/ping/{token}/{code}` (Healthchecks style, a cron job's `curl …/ping/$TOKEN/$?`): the exit
-- code, 0–255 (0 a success, any other a fail), read back with GET /api/v1/targets/{id}/pings. Null for `/ping/{token}`,
-- `/start` and `/fail`, for pings stored before this version, and for those an aggregator of the version before stores
-- during a rolling upgrade. Nullable without a default: a catalogue change only, no rewrite of the table.
ALTER TABLE "heartbeat_pings" ADD COLUMN "exit_code" SMALLINT;
