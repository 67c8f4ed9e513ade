# syntax=docker/dockerfile:1
#
# The worker image: Node (current LTS), the built `worker` and `tasker` programs, and tini.
# It runs the commands of a jobs file, so it is meant to be extended with your own software:
#
#   FROM tasker-worker:0.1.0
#   USER root
#   RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \
#    && rm -rf /var/lib/apt/lists/* \
#    && python3 -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir asreview asreview-makita
#   ENV PATH=/opt/venv/bin:$PATH
#   USER 0:1000
#
# (root, as this image: the worker holds the secrets and runs its commands as `node`, below).
#
# Build (from the repository root):  docker build -f worker.Dockerfile -t tasker-worker:0.1.0 .
# See docs/kubernetes.md.

ARG NODE_IMAGE=node:24-bookworm-slim

# 1. Compile TypeScript to dist/ (dev dependencies live only in this stage).
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` builds, and the sources are not copied yet.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY shared shared
COPY tasker tasker
COPY worker worker
RUN npm run build

# 2. Production dependencies only.
FROM ${NODE_IMAGE} AS prod-deps
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` would try to build; dist/ comes from the build stage. No production
# dependency needs an install script.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# 3. The runtime: production dependencies, dist/ and the two entry points, nothing else.
FROM ${NODE_IMAGE}
# tini as PID 1 forwards SIGTERM to the worker (which drains) and reaps orphaned processes of the
# commands; node as PID 1 would do neither. Not -g: the worker stops its commands' process groups
# itself, after the drain.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
# Recorded with each result as `image` (what a pool's sizes were measured on): pass the tag you push,
# docker build --build-arg IMAGE=registry.example/tasker-worker:1.2.3 ...
ARG IMAGE=tasker-worker:0.1.0
ENV TASKER_IMAGE=$IMAGE
WORKDIR /opt/tasker
COPY --from=prod-deps /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY bin ./bin
# `tasker status` and `tasker purge` from `kubectl exec`; the shared volume is mounted at /work:
# root's, the commands' group's, set-group-id and sticky (commands cannot replace /work/.tasker).
# /run/secrets: where secret volumes are mounted (k8s/), reachable by root only whatever the
# files' own modes (fsGroup makes them group-readable).
RUN ln -s /opt/tasker/bin/tasker.js /usr/local/bin/tasker \
 && ln -s /opt/tasker/bin/worker.js /usr/local/bin/worker \
 && install -d -o 0 -g 1000 -m 3775 /work \
 && install -d -o 0 -g 0 -m 0700 /run/secrets
# Commands run as the base image's `node` user (1000:1000), the worker (and a tasker built on this
# image) as root, which holds the secrets: commands cannot read its environment, memory or secret
# files (docs/architecture.md, "Commands under another user"). k8s/ gives root only the
# capabilities to start and stop them (SETUID, SETGID, KILL).
ENV WORKER_COMMAND_USER=1000:1000
ENV TASKER_COMMAND_USER=1000:1000
USER 0:1000
WORKDIR /work
ENTRYPOINT ["/usr/bin/tini", "--", "/opt/tasker/bin/worker.js"]
