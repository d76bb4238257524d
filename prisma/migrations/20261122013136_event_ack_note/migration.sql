-- AlterTable
ALTER TABLE "events" ADD COLUMN     "ack_expires_at" TIMESTAMPTZ(3),
ADD COLUMN     "ack_note" TEXT;
