-- DropIndex
DROP INDEX "events_kind_occurred_at_idx";

-- DropIndex
DROP INDEX "events_node_id_occurred_at_idx";

-- AlterTable
ALTER TABLE "events" ADD COLUMN     "acknowledged_at" TIMESTAMPTZ(3),
ADD COLUMN     "acknowledged_by" TEXT,
ADD COLUMN     "count" BIGINT NOT NULL DEFAULT 1,
ADD COLUMN     "kernel_seq" BIGINT,
ADD COLUMN     "kernel_time_us" BIGINT,
ADD COLUMN     "leg" TEXT,
ADD COLUMN     "mirror" TEXT,
ADD COLUMN     "range_unit" TEXT,
ADD COLUMN     "raw_line" TEXT,
ADD COLUMN     "region_end" BIGINT,
ADD COLUMN     "region_start" BIGINT,
ADD COLUMN     "simulated" BOOLEAN NOT NULL DEFAULT false;

-- CreateIndex
CREATE INDEX "events_node_id_occurred_at_id_idx" ON "events"("node_id", "occurred_at" DESC, "id" DESC);

-- CreateIndex
CREATE INDEX "events_kind_occurred_at_id_idx" ON "events"("kind", "occurred_at" DESC, "id" DESC);

-- CreateIndex
CREATE INDEX "events_severity_occurred_at_id_idx" ON "events"("severity", "occurred_at" DESC, "id" DESC);

-- CreateIndex
CREATE INDEX "events_device_occurred_at_id_idx" ON "events"("device", "occurred_at" DESC, "id" DESC);

-- CreateIndex
CREATE INDEX "events_mirror_occurred_at_id_idx" ON "events"("mirror", "occurred_at" DESC, "id" DESC);
