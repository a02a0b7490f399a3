-- `fleet_poll_epochs`: the fencing token of sync-orchestrator's fleet-poll lease (writer: sync-orchestrator). The
-- lease is a session advisory lock: when its session dies the next replica takes it at once, while the old holder
-- may still be in a poll cycle and write member data after the new holder's. A new holder advances the epoch (only
-- while its lock session holds the lock), which waits for writes that checked the old one (FOR SHARE), and every write of
-- a cycle checks it in its own transaction (the Redis member cache keeps its own copy, fleet:poll-epoch), so a
-- stale holder's writes are refused.
CREATE TABLE "fleet_poll_epochs" (
    "name" TEXT NOT NULL,
    "epoch" BIGINT NOT NULL,
    "holder" TEXT NOT NULL,
    "taken_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "fleet_poll_epochs_pkey" PRIMARY KEY ("name")
);
