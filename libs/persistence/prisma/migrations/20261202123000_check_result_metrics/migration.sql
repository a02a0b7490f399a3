-- Service collectors (issue 16): the figures a check result carried (checkMetricSchema),
-- as a JSON array of {name, labels?, value}. Null for results without figures.
ALTER TABLE "check_results" ADD COLUMN "metrics" JSONB;
