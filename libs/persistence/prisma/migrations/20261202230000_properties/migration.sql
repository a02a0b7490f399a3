-- Site properties (issue 19, writer: sync-orchestrator, through the same versioned and audited path
-- as checks and alert rules): key -> JSON value. In snapshots, config as code and the config hash
-- (content_hash per property, aggregated by key in byte order after the alert areas).
CREATE TABLE "properties" (
    "key" TEXT NOT NULL,
    "value" JSONB NOT NULL,
    "content_hash" TEXT NOT NULL,
    "version" INTEGER NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "properties_pkey" PRIMARY KEY ("key")
);
