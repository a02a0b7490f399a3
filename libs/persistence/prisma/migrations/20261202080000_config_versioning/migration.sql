-- Configuration owned by sync-orchestrator (issue 15): checks keep their whole validated
-- definition in spec, are unique by name and carry the config version that last
-- changed them, config_head is the one row every writer locks, versions gain a
-- summary and origin, audit entries a version and a JSON diff, config.changed has
-- a transactional outbox.

-- checks: earlier columns folded into spec (no writer existed before, kept for safety)
ALTER TABLE "checks"
    ADD COLUMN "spec" JSONB,
    ADD COLUMN "paused" BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN "version" INTEGER NOT NULL DEFAULT 0;

UPDATE "checks" SET
    "spec" = "config" || jsonb_build_object(
        'name', "name", 'type', "type", 'intervalSeconds', "interval_seconds", 'timeoutSeconds', "timeout_seconds",
        'locations', to_jsonb(COALESCE("locations", ARRAY[]::TEXT[])), 'tags', to_jsonb(COALESCE("tags", ARRAY[]::TEXT[])),
        'paused', NOT "enabled"),
    "paused" = NOT "enabled";

ALTER TABLE "checks"
    ALTER COLUMN "spec" SET NOT NULL,
    ALTER COLUMN "version" DROP DEFAULT,
    DROP COLUMN "config",
    DROP COLUMN "enabled",
    DROP COLUMN "interval_seconds",
    DROP COLUMN "timeout_seconds";

CREATE UNIQUE INDEX "checks_name_key" ON "checks"("name");
CREATE INDEX "checks_type_idx" ON "checks"("type");

-- config_head: one row, id 1
CREATE TABLE "config_head" (
    "id" INTEGER NOT NULL DEFAULT 1,
    "version" INTEGER NOT NULL DEFAULT 0,
    "hash" TEXT,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "config_head_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "config_head_one_row" CHECK ("id" = 1)
);
INSERT INTO "config_head" ("id", "version")
    SELECT 1, COALESCE(MAX("version"), 0) FROM "config_versions";

-- config_versions
ALTER TABLE "config_versions"
    ADD COLUMN "summary" TEXT NOT NULL DEFAULT '',
    ADD COLUMN "origin" TEXT NOT NULL DEFAULT 'local';

-- audit_log
ALTER TABLE "audit_log"
    ADD COLUMN "version" INTEGER,
    ADD COLUMN "diff" JSONB NOT NULL DEFAULT '[]';
CREATE INDEX "audit_log_version_idx" ON "audit_log"("version");

-- config_changed_outbox
CREATE TABLE "config_changed_outbox" (
    "message_id" UUID NOT NULL,
    "version" INTEGER NOT NULL,
    "payload" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "config_changed_outbox_pkey" PRIMARY KEY ("message_id")
);
CREATE UNIQUE INDEX "config_changed_outbox_version_key" ON "config_changed_outbox"("version");
