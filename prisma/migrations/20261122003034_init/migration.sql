-- CreateEnum
CREATE TYPE "Role" AS ENUM ('viewer', 'operator', 'admin');

-- CreateEnum
CREATE TYPE "Severity" AS ENUM ('debug', 'info', 'notice', 'warning', 'error', 'critical');

-- CreateTable
CREATE TABLE "nodes" (
    "id" TEXT NOT NULL,
    "hostname" TEXT NOT NULL,
    "api_url" TEXT NOT NULL,
    "agent_version" TEXT NOT NULL,
    "kernel_release" TEXT,
    "sample_interval_ms" INTEGER NOT NULL,
    "started_at" TIMESTAMPTZ(3) NOT NULL,
    "last_seen_at" TIMESTAMPTZ(3) NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "nodes_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "samples" (
    "node_id" TEXT NOT NULL,
    "series" TEXT NOT NULL,
    "at" TIMESTAMPTZ(3) NOT NULL,
    "value" DOUBLE PRECISION NOT NULL,

    CONSTRAINT "samples_pkey" PRIMARY KEY ("node_id","series","at")
);

-- CreateTable
CREATE TABLE "events" (
    "id" BIGSERIAL NOT NULL,
    "idempotency_key" TEXT NOT NULL,
    "node_id" TEXT,
    "kind" TEXT NOT NULL,
    "severity" "Severity" NOT NULL,
    "source" TEXT NOT NULL,
    "occurred_at" TIMESTAMPTZ(3) NOT NULL,
    "received_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "device" TEXT,
    "message" TEXT NOT NULL,
    "range_start" DECIMAL(20,0),
    "range_end" DECIMAL(20,0),
    "data" JSONB NOT NULL DEFAULT '{}',

    CONSTRAINT "events_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "users" (
    "id" UUID NOT NULL,
    "username" TEXT NOT NULL,
    "display_name" TEXT,
    "password_hash" TEXT,
    "role" "Role" NOT NULL DEFAULT 'viewer',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "disabled_at" TIMESTAMPTZ(3),

    CONSTRAINT "users_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "audit_actions" (
    "id" BIGSERIAL NOT NULL,
    "at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "user_id" UUID,
    "actor" TEXT NOT NULL,
    "action" TEXT NOT NULL,
    "target" TEXT NOT NULL,
    "params" JSONB NOT NULL DEFAULT '{}',
    "outcome" TEXT NOT NULL,
    "detail" TEXT,

    CONSTRAINT "audit_actions_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "samples_series_at_idx" ON "samples"("series", "at");

-- CreateIndex
CREATE UNIQUE INDEX "events_idempotency_key_key" ON "events"("idempotency_key");

-- CreateIndex
CREATE INDEX "events_occurred_at_id_idx" ON "events"("occurred_at" DESC, "id" DESC);

-- CreateIndex
CREATE INDEX "events_node_id_occurred_at_idx" ON "events"("node_id", "occurred_at" DESC);

-- CreateIndex
CREATE INDEX "events_kind_occurred_at_idx" ON "events"("kind", "occurred_at" DESC);

-- CreateIndex
CREATE UNIQUE INDEX "users_username_key" ON "users"("username");

-- CreateIndex
CREATE INDEX "audit_actions_at_id_idx" ON "audit_actions"("at" DESC, "id" DESC);

-- AddForeignKey
ALTER TABLE "samples" ADD CONSTRAINT "samples_node_id_fkey" FOREIGN KEY ("node_id") REFERENCES "nodes"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "events" ADD CONSTRAINT "events_node_id_fkey" FOREIGN KEY ("node_id") REFERENCES "nodes"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "audit_actions" ADD CONSTRAINT "audit_actions_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users"("id") ON DELETE SET NULL ON UPDATE CASCADE;
