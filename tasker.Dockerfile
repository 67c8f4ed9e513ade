# syntax=docker/dockerfile:1
#
# The tasker image: Node (current LTS), the built `tasker` program, tini, and a job in /job.
# /job holds the jobs file and its inputs; k8s/tasker.yml runs
#   tasker run --run-id <the Job's uid> --split makita --stage /job/data --stage /job/bin /job/jobs.sh
# As shipped, /job is the makita-shaped demo of examples/makita (bash stand-ins, runs anywhere).
#
# Build (from the repository root):  docker build -f tasker.Dockerfile -t tasker:0.1.0 .
#
# Your own job: build on the stage without the demo (`runtime`: no /job at all, so nothing of the
# demo's data/ or bin/ gets staged with your files),
#
#   docker build -f tasker.Dockerfile --target runtime -t tasker-runtime:0.1.0 .
#
#   FROM tasker-runtime:0.1.0
#   COPY jobs.sh /job/jobs.sh
#   COPY data /job/data
#
# and name in k8s/tasker.yml's args what your /job holds (drop `--stage /job/bin` without a bin/),
# or mount the jobs file from a ConfigMap (k8s/examples/tasker-configmap.yml, docs/kubernetes.md).
# Lines of a tasker phase (makita's mkdir and describe lines) run in the tasker's own container:
# when they need your software, build the tasker on your worker image instead (FROM
# your-worker-image, the same COPY lines, and ENTRYPOINT ["/usr/bin/tini", "--", "/opt/tasker/bin/tasker.js"]).

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

# 3. The runtime: production dependencies, dist/ and the entry points; no job (a base for yours).
FROM ${NODE_IMAGE} AS runtime
# tini as PID 1 forwards SIGTERM to the tasker (which stops its commands, records them and exits
# 130, so the Job's next pod resumes the run) and reaps orphaned processes; node as PID 1 would not.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
# Recorded with each result as `image` (what a pool's sizes were measured on): pass the tag you push,
# docker build --build-arg IMAGE=registry.example/tasker:1.2.3 ...
ARG IMAGE=tasker:0.1.0
ENV TASKER_IMAGE=$IMAGE
WORKDIR /opt/tasker
COPY --from=prod-deps /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY bin ./bin
# /work: root's, the commands' group's, set-group-id and sticky (commands cannot replace
# /work/.tasker); /run/secrets, where secret volumes are mounted, reachable by root only.
RUN ln -s /opt/tasker/bin/tasker.js /usr/local/bin/tasker \
 && install -d -o 0 -g 1000 -m 3775 /work \
 && install -d -o 0 -g 0 -m 0700 /run/secrets
# The commands of tasker phases run as the base image's `node` user (1000:1000), the tasker as
# root, which holds the secrets (docs/architecture.md, "Commands under another user"; k8s/tasker.yml
# gives root only the capabilities SETUID, SETGID and KILL).
ENV TASKER_COMMAND_USER=1000:1000
USER 0:1000
# The shared volume's mount point: commands run here, runs are recorded under .tasker/.
WORKDIR /work
ENTRYPOINT ["/usr/bin/tini", "--", "/opt/tasker/bin/tasker.js"]
CMD ["--help"]

# 4. The default image: the runtime with the demo job in /job.
FROM runtime AS demo
COPY examples/makita /job
CMD ["run", "--split", "makita", "--stage", "/job/data", "--stage", "/job/bin", "/job/jobs.sh"]
