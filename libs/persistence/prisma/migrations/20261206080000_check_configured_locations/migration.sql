-- Checks: the locations their configuration runs them at, as the last check.lifecycle applied said (null: not said
-- yet or every location, as is an empty array). A location left out is dropped from the check's live state, and
-- results from it are history only: before, a location taken off a check stayed in its consensus and read STALE for
-- ever. Null until the check's next configuration write (docs/runbooks/upgrading.md).
ALTER TABLE "target_states" ADD COLUMN "configured_locations" TEXT[];
