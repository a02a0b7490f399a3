-- The alerts a logged message carried (issue 18, the delivery log page): at most 20 of them as
-- [{id, ruleName, targetId, status}] and how many there were. Rows logged before stay empty.
ALTER TABLE "alert_deliveries" ADD COLUMN "alerts" JSONB NOT NULL DEFAULT '[]'::jsonb;
ALTER TABLE "alert_deliveries" ADD COLUMN "alert_count" INTEGER NOT NULL DEFAULT 0;
