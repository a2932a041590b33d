# One image for both processes of askq: the API (default command) and the worker
# (`node --import tsx apps/worker/src/main.ts`). TypeScript runs through tsx; there is no build step.
FROM node:20-bookworm-slim

WORKDIR /app

# Manifests first, so the dependency layer is rebuilt only when they change. `npm ci` installs the
# devDependencies too (tsx runs the apps) and applies the root `overrides` pin of
# chromadb-js-bindings-linux-x64-gnu to 1.0.5 (glibc 2.36 of bookworm; 1.3.x needs 2.38).
COPY package.json package-lock.json .npmrc ./
COPY packages/shared/package.json packages/shared/
COPY apps/api/package.json apps/api/
COPY apps/worker/package.json apps/worker/
RUN npm ci --include=dev --no-audit --no-fund \
  && npm cache clean --force

# The source (see .dockerignore). Owned by root and read-only for the process user.
COPY . .

# Set after `npm ci`, which would otherwise skip the devDependencies (tsx).
ENV NODE_ENV=production

USER node

EXPOSE 3000 9464

# Healthchecks live in docker-compose.yml (the API and the worker probe different ports).
CMD ["node", "--import", "tsx", "apps/api/src/main.ts"]
