-- Public status pages (issue 17, writer: sync-orchestrator, through the same versioned and audited
-- path as alert rules). The validated page in `spec`, its slug apart (unique: the public URL).
-- Like silences, pages are versioned and audited but outside snapshots and the config hash.
CREATE TABLE "status_pages" (
    "id" UUID NOT NULL,
    "slug" TEXT NOT NULL,
    "spec" JSONB NOT NULL,
    "version" INTEGER NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "status_pages_pkey" PRIMARY KEY ("id")
);

CREATE UNIQUE INDEX "status_pages_slug_key" ON "status_pages"("slug");
