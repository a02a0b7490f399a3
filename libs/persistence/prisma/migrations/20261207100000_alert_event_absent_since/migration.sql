-- An alert that ended as series_absent: since when its series was missing, so the history and the API say how long it
-- had no data ("series absent (no data for 20 min)") — the grace scales with how often the target reports, so the
-- reason alone does not tell. NULL for every other change and for rows recorded before it.

-- AlterTable
ALTER TABLE "alert_events" ADD COLUMN "absent_since" TIMESTAMPTZ(3);
