-- Alert configuration (issue 18, writer: sync-orchestrator, through the same versioned path as
-- checks). Rules, channels and maintenance windows are configuration: each row keeps the validated
-- spec and a content hash that the config hash takes in (after the checks' hashes, by area then id,
-- docs/runbooks/configuration.md). A channel's secrets are sealed (AES-256-GCM, key id in each
-- ciphertext, FLEETWATCH_ENCRYPTION_KEY) in `secrets`, `secrets_redacted` is the answer's form
-- (`{set, hint}` per field), kept in the clear so reads never decrypt. Silences are operational
-- state: versioned and audited, but outside snapshots and the config hash.
CREATE TABLE "alert_rules" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "spec" JSONB NOT NULL,
    "content_hash" TEXT NOT NULL,
    "version" INTEGER NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "alert_rules_pkey" PRIMARY KEY ("id")
);

CREATE TABLE "notification_channels" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "spec" JSONB NOT NULL,
    "secrets" JSONB NOT NULL DEFAULT '{}',
    "secrets_redacted" JSONB NOT NULL DEFAULT '{}',
    "content_hash" TEXT NOT NULL,
    "version" INTEGER NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "notification_channels_pkey" PRIMARY KEY ("id")
);

CREATE TABLE "maintenance_windows" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "spec" JSONB NOT NULL,
    "content_hash" TEXT NOT NULL,
    "version" INTEGER NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "maintenance_windows_pkey" PRIMARY KEY ("id")
);

CREATE TABLE "silences" (
    "id" UUID NOT NULL,
    "spec" JSONB NOT NULL,
    "starts_at" TIMESTAMPTZ(3) NOT NULL,
    "ends_at" TIMESTAMPTZ(3) NOT NULL,
    "created_by" TEXT NOT NULL,
    "version" INTEGER NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "silences_pkey" PRIMARY KEY ("id")
);

CREATE INDEX "silences_ends_at_idx" ON "silences"("ends_at");

-- One-time seeds (the shipped default alert rules): a row says it ran, so a rule a user deleted
-- is not created again on the next start.
CREATE TABLE "config_seeds" (
    "name" TEXT NOT NULL,
    "version" INTEGER NOT NULL,
    "at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "config_seeds_pkey" PRIMARY KEY ("name")
);
