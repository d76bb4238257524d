-- CreateTable
CREATE TABLE "alert_silences" (
    "id" BIGSERIAL NOT NULL,
    "alertname" TEXT,
    "mirror" TEXT,
    "node_id" TEXT,
    "created_by" TEXT NOT NULL,
    "reason" TEXT NOT NULL,
    "starts_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "ends_at" TIMESTAMPTZ(3) NOT NULL,
    "expired_at" TIMESTAMPTZ(3),
    "expired_by" TEXT,

    CONSTRAINT "alert_silences_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "alert_silences_ends_at_idx" ON "alert_silences"("ends_at");
