-- A pushed instance's own kind (container, pod, process, service, job), as its latest update said: kept with its state
-- so that live state rebuilt from Postgres (after a Redis flush) still lists it under `GET /api/v1/targets?kind=container`.
-- Nullable without a default: a catalogue change only, no rewrite of the table. Instances stored before it have none
-- until their next update (they match `kind=instance`, not `kind=container`).
ALTER TABLE "target_states" ADD COLUMN "instance_kind" TEXT;
