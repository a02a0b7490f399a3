-- Fencing tokens of the aggregator's observation shards (issue 14). A replica that takes a shard's
-- advisory lock advances the shard's epoch (waiting for every commit still holding the old epoch),
-- and each commit checks, inside its transaction, that the epochs it holds are still current. A
-- replica whose lock connection was lost therefore cannot commit a batch it had in flight after the
-- next holder started: that batch is refused and its messages are redelivered in order to the new holder.
CREATE TABLE "aggregator_shard_epochs" (
    "shard" INTEGER NOT NULL,
    "epoch" BIGINT NOT NULL,
    "holder" TEXT NOT NULL,
    "taken_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "aggregator_shard_epochs_pkey" PRIMARY KEY ("shard")
);
