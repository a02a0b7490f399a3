-- The creator's username, kept with the key: created_by is set to NULL when the user is deleted, and the docs tell
-- admins to revoke the keys of people who leave (a key is a site credential and keeps working).
ALTER TABLE "api_keys" ADD COLUMN "created_by_name" TEXT;

-- Keys made before: named from their creator where the user still exists.
UPDATE "api_keys" AS k SET "created_by_name" = u."username" FROM "users" AS u WHERE k."created_by" = u."id";
