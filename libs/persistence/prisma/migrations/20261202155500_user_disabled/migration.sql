-- Users can be disabled (issue 17): sign-in refused, every session revoked at once (the
-- gateway bumps token_version in the same transaction). NULL: enabled.
ALTER TABLE "users" ADD COLUMN "disabled_at" TIMESTAMPTZ(3);
