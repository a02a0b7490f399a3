-- A status-change subscription whose receiver rate limits (429, or 503 with Retry-After) pauses as a whole until
-- `paused_until` (writer: aggregator): its queued deliveries are not claimed meanwhile, by any replica, and the pause
-- outlives a restart. Deliveries waiting out a pause keep their place and their attempt count. Keyed by the
-- subscription, the unit the worker claims by (its receiver URL is read from the subscription after the claim).
-- Rows past `paused_until` mean nothing and are deleted with the deliveries' retention. A new table: nothing is
-- rewritten, and an aggregator of the version before ignores it during a rolling upgrade (it goes on sending as before).
CREATE TABLE "subscription_pauses" (
    "subscription_id" TEXT NOT NULL,
    "paused_until" TIMESTAMPTZ(3) NOT NULL,
    "http_status" INTEGER,
    "reason" TEXT,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "subscription_pauses_pkey" PRIMARY KEY ("subscription_id")
);
