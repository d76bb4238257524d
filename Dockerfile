# One image for the web app and the agent (a real deployment; see docker-compose.yml).
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY . .
RUN npm ci --no-audit --no-fund && npx turbo run build --filter=@mirrorplane/web

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app /app
# web: apply migrations, then serve the dashboard. The agent overrides the command.
CMD ["sh", "-c", "npx tsx packages/db/src/cli.ts migrate && cd apps/web && exec node server.mjs --port 3000 --hostname 0.0.0.0"]
