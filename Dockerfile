# syntax=docker/dockerfile:1
#
# stsgate production image: compiled JavaScript on Node.js 20, production dependencies only, a numeric
# non-root user, and nothing written outside /tmp (runs with a read-only root filesystem).
#
#   docker build -t stsgate:0.1.0 .
#   docker run --rm -p 8080:8080 --read-only --tmpfs /tmp \
#     -v "$PWD/gateway.yaml:/etc/stsgate/gateway.yaml:ro" stsgate:0.1.0
#
# Pin the base image by digest in your own build (--build-arg NODE_IMAGE=node:20-slim@sha256:...) so that
# rebuilds are reproducible; the tag alone follows Debian and Node.js security updates.
ARG NODE_IMAGE=node:20-slim

# ---- build: full dependencies, TypeScript compiled to dist/ -------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
# The rest of the build context (.dockerignore lets in tsconfig*.json, src/ and providers/ only).
COPY . .
# providers/ may not exist in a checkout yet (git keeps no empty folder): make it, so the copy below works.
RUN npm run build && mkdir -p providers

# ---- deps: production dependencies only -----------------------------------------------------------------
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: no install script runs (none is needed at run time); the cache is not kept.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# ---- runtime --------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    HOME=/tmp \
    NPM_CONFIG_UPDATE_NOTIFIER=false
WORKDIR /app
# Everything under /app belongs to root: the gateway's user can read the code but not change it.
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/package.json ./
# Declarative provider definitions (providers/*.yaml), read at run time.
COPY --from=build /app/providers ./providers

# A numeric user (no name lookup needed), so Kubernetes can verify runAsNonRoot without a passwd entry.
USER 10001:10001
# 8080: the API (listen.port); 9090: metrics, probes and the admin API (admin.listen.port).
EXPOSE 8080 9090
# Liveness for plain Docker (Kubernetes uses the chart's probes instead). No curl in slim images: Node's
# own http client, 2 s budget. It assumes listen.port 8080, the image's documented port.
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "require('http').get('http://127.0.0.1:8080/healthz',{timeout:2000},r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1)).on('timeout',()=>process.exit(1))"]
# Node flags, for resident memory (README.md, "Memory"; measured in bench/README.md). npm run bench starts
# its gateway with these same flags, read from this line.
#   --max-semi-space-size=4   a young generation of 2 x 4 MB instead of V8's 2 x 16 MB: the gateway's
#                             per-request objects die young either way.
#   --heap-growing-percent=50 after each full collection the old generation may grow to 1.5 times what
#                             survived before the next one, instead of up to 4 times on a host with much
#                             memory: peak RSS under load about 190 -> 120 MB, for 5-10% more CPU per
#                             request (collection threads). A growth factor, not a cap: a larger live set
#                             gets a larger heap, never an out-of-memory crash.
ENTRYPOINT ["node", "--max-semi-space-size=4", "--heap-growing-percent=50", "dist/cli.js"]
CMD ["serve", "--config", "/etc/stsgate/gateway.yaml"]
