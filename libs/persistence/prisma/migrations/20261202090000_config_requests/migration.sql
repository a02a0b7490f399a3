-- Config writes already answered (issue 15): the RPC request's message id, recorded with
-- the reply in the same transaction as the write it answered. A request RabbitMQ
-- redelivers after the owner committed but before it acked (owner crash, lost channel)
-- is answered with the recorded reply instead of being applied a second time.
-- Ping tokens a write issued are kept apart (secrets) and cleared once the request's
-- deadline has passed (the owner no longer runs it then), rows are pruned after a day.
-- (No semicolons in comments: the migration engine splits statements on them.)
CREATE TABLE "config_requests" (
    "request_id" UUID NOT NULL,
    "method" TEXT NOT NULL,
    "reply" JSONB NOT NULL,
    "secrets" JSONB,
    "deadline" TIMESTAMPTZ(3) NOT NULL,
    "at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "config_requests_pkey" PRIMARY KEY ("request_id")
);

CREATE INDEX "config_requests_at_idx" ON "config_requests"("at");
