-- Configuration writes cost what they change, not the whole configuration (issue 15).
-- checks.content_hash: sha256 of each check's canonical config form with its name, the config
-- hash is computed from these in name order (docs/runbooks/configuration.md). Canonical JSON
-- without default values is the owner's code, not SQL, so rows written before this stay NULL
-- here and sync-orchestrator fills them in at start, under the config_head lock, before it
-- serves any request (ConfigWriter.fillContentHashes), and sets the head hash to match.
-- config_versions: a version stores either its whole snapshot or its changes (check name to
-- config form, or null for a name that left), a whole snapshot at least every 50 versions.
-- Existing rows keep their full snapshots and stay valid.
ALTER TABLE "checks" ADD COLUMN "content_hash" TEXT;

ALTER TABLE "config_versions" ALTER COLUMN "snapshot" DROP NOT NULL;
ALTER TABLE "config_versions" ADD COLUMN "changes" JSONB;
ALTER TABLE "config_versions" ADD CONSTRAINT "config_versions_snapshot_or_changes"
    CHECK (("snapshot" IS NULL) <> ("changes" IS NULL));
