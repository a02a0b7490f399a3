-- A channel whose receiver rate limits (429, or 503 with Retry-After) pauses as a whole until `paused_until` (writer:
-- aggregator): its queued messages are not claimed meanwhile, by any replica, and the pause outlives a restart.
-- Messages waiting out a pause keep their place and their attempt count. Rows past `paused_until` mean nothing and
-- are deleted with the delivery log's retention. A new table: nothing is rewritten, and an aggregator of the version
-- before ignores it during a rolling upgrade (it goes on sending as before).
CREATE TABLE "alert_channel_pauses" (
    "channel_id" TEXT NOT NULL,
    "paused_until" TIMESTAMPTZ(3) NOT NULL,
    "http_status" INTEGER,
    "reason" TEXT,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "alert_channel_pauses_pkey" PRIMARY KEY ("channel_id")
);
