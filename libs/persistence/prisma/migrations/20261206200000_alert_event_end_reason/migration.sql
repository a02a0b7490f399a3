-- Why an alert ended (contracts ALERT_END_REASONS: condition_cleared, series_absent, target_gone, target_stale,
-- target_paused, target_unknown, not_selected, rule_disabled, rule_changed, rule_deleted), kept on its change to
-- resolved (or pending to inactive) so the history and the API tell an alert whose figures recovered from one whose
-- data disappeared. Rows recorded before stay NULL (the reason is unknown).

-- AlterTable
ALTER TABLE "alert_events" ADD COLUMN "end_reason" TEXT;
