# syntax=docker/dockerfile:1
#
# Memory Exchange server image: `docker build -t memory-exchange .`
#
# The code supports Node >= 20, but Node 20 is past its end of life: the image
# is built on the current LTS. Override with --build-arg NODE_VERSION=22.
# test/ops-docker.test.ts runs this file's build-stage RUN commands in a copy
# of the repository, so keep each step a plain command (no cache mounts that
# the commands depend on). Lines under a "[toolchain]" comment are skipped there.
ARG NODE_VERSION=24

FROM node:${NODE_VERSION}-slim AS build
WORKDIR /repo
# [toolchain] better-sqlite3 is a native addon: a compiler for when no prebuilt binary matches.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
# node-gyp uses the headers that ship with the image instead of downloading them.
ENV npm_config_nodedir=/usr/local
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml .npmrc ./
# [toolchain] pnpm at the version pinned by package.json's "packageManager".
RUN npm install -g "pnpm@$(node -p "require('./package.json').packageManager.split('@')[1]")"
# Dependencies only depend on the lockfile: this layer stays cached while sources change.
RUN pnpm fetch
COPY . .
RUN pnpm install --frozen-lockfile --offline
RUN pnpm --filter "@memory-exchange/server..." build
# A self-contained copy of the server with production dependencies only.
RUN pnpm --config.inject-workspace-packages=true --filter @memory-exchange/server deploy --prod --offline /out
# Build leftovers of the native addon; the runtime only needs the .node file.
RUN rm -rf /out/node_modules/.pnpm/better-sqlite3@*/node_modules/better-sqlite3/build/Release/obj* \
           /out/node_modules/.pnpm/better-sqlite3@*/node_modules/better-sqlite3/build/Release/test_extension.node \
           /out/node_modules/.pnpm/better-sqlite3@*/node_modules/better-sqlite3/deps \
           /out/node_modules/.pnpm/better-sqlite3@*/node_modules/better-sqlite3/src \
 && node /out/dist/cli.js --version

FROM node:${NODE_VERSION}-slim AS runtime
ENV NODE_ENV=production \
    MEMORY_EXCHANGE_HOST=0.0.0.0 \
    MEMORY_EXCHANGE_PORT=8080
WORKDIR /app
# Code and dependencies stay owned by root (read-only for the service); only data/ is writable.
COPY --from=build /out /app
RUN mkdir -p /app/data && chown node:node /app/data
VOLUME ["/app/data"]
USER node
EXPOSE 8080
# slim images have no curl: ask node. /ready is 200 only when the database is reachable and migrated.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.MEMORY_EXCHANGE_PORT||8080)+'/ready').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# `docker run IMAGE migrate`, `docker run IMAGE keys create --user-id 42` run the other commands.
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["serve"]
