-- Fleet (issue 19): the member sites a leader polls (from FLEETWATCH_LEADER_CONFIG, later also
-- registration) with the state of their last poll. Writer: sync-orchestrator. The gateway reads it.
-- Credentials are never stored: the config names an environment variable, read at boot.
CREATE TABLE "fleet_sites" (
    "name" TEXT NOT NULL,
    "url" TEXT NOT NULL,
    "tags" TEXT[] DEFAULT ARRAY[]::TEXT[],
    "failover_order" INTEGER,
    "property_overrides" JSONB NOT NULL DEFAULT '{}',
    "source" TEXT NOT NULL DEFAULT 'config',
    "last_attempt_at" TIMESTAMPTZ(3),
    "last_success_at" TIMESTAMPTZ(3),
    "last_error" TEXT,
    "consecutive_failures" INTEGER NOT NULL DEFAULT 0,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "fleet_sites_pkey" PRIMARY KEY ("name")
);
