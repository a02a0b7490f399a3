-- AlterTable
ALTER TABLE "api_keys" ADD COLUMN "client_cert_subject" TEXT;
