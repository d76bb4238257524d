import { defineConfig } from "prisma/config";

// Prisma 7 reads the connection URL from here (no implicit .env loading). The product
// itself never needs this file: packages/db builds its URL from DATABASE_URL or the
// embedded Postgres. It exists so the stock Prisma CLI (`prisma migrate deploy`,
// `prisma studio`) works on machines that can reach Prisma's engine downloads.
export default defineConfig({
  schema: "prisma/schema.prisma",
  migrations: { path: "prisma/migrations" },
  datasource: { url: process.env.DATABASE_URL ?? "postgresql://localhost:5432/mirrorplane" },
});
