# The active-call controller as an image (the docker-compose lab's `controller`; also usable on its own).
# Build:  docker build -t active-call .      Run:  docker run -p 8080:8080 active-call
# Two stages: the first compiles the TypeScript and the TinySilero native addon (it needs a C toolchain), the
# second carries only what runs, with the local speech engines the keyless playbooks use.

# node:20-bookworm-slim pinned to a release, so a rebuild gets the same Node (engines: >=20.19).
FROM node:20.19.5-bookworm-slim AS build
ENV DEBIAN_FRONTEND=noninteractive
# node-gyp's toolchain for native/ (TinySilero); ACTIVE_CALL_NATIVE_STRICT makes a failed addon build fail here
# instead of falling back to the slower TypeScript forward pass at run time.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make gcc g++ libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY native ./native
COPY bin ./bin
# web/build-phone.mjs bundles the /phone page (JsSIP) into dist/web during the build.
COPY web ./web
ENV ACTIVE_CALL_NATIVE_STRICT=1
# npm ci runs the addon build ("install") and the TypeScript build ("prepare").
RUN npm ci --no-audit --no-fund \
 && test -f native/build/Release/tinysilero.node \
 && npm prune --omit=dev --no-audit --no-fund

FROM node:20.19.5-bookworm-slim
ENV DEBIAN_FRONTEND=noninteractive NODE_ENV=production
# The local engines: flite and espeak-ng (TTS), pocketsphinx with its English model (ASR); curl for HEALTHCHECK.
RUN apt-get update \
 && apt-get install -y --no-install-recommends flite espeak-ng pocketsphinx pocketsphinx-en-us curl ca-certificates openssl \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
COPY --from=build /app/native/build/Release/tinysilero.node ./native/build/Release/tinysilero.node
COPY config ./config
COPY playbooks ./playbooks
COPY sounds ./sounds
COPY web ./web
# Runs as the image's unprivileged "node" user; data/ (recordings, dumps, spool, cache) is the only place it writes.
RUN mkdir -p /app/data && chown node:node /app/data
USER node
# HTTP/WebSocket API and console; the outbound-socket listener (FreeSWITCH); AudioSocket (Asterisk).
EXPOSE 8080 8084 9093
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD curl -fsS http://127.0.0.1:8080/health || exit 1
ENTRYPOINT ["node", "bin/active-call.js"]
