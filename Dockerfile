# syntax=docker/dockerfile:1
# The tagtrail image: the bundled CLI on PATH as `tagtrail`, run by the unprivileged user node.
# It is meant as a GitLab CI job image too, so it keeps a shell (/bin/sh) and has no ENTRYPOINT
# (the node base image's is cleared): the runner starts the job's script with the shell.
#
#   docker build -t registry.gitlab.com/tagtrail/tagtrail:0.1.0 .
#   docker run --rm registry.gitlab.com/tagtrail/tagtrail:0.1.0 tagtrail --help

# Build: all dependencies, install scripts skipped (esbuild's binary comes in its own package),
# then the esbuild bundle in dist/.
FROM node:20-alpine AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build

# Runtime dependencies only, with their install scripts (native modules are built here, where
# the compilers are, and only their results are copied on).
FROM node:20-alpine AS deps
RUN apk add --no-cache python3 make g++
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM node:20-alpine
ENV NODE_ENV=production
WORKDIR /opt/tagtrail
COPY package.json ./
COPY bin ./bin
COPY --from=deps /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
RUN printf '#!/bin/sh\nexec node /opt/tagtrail/bin/tagtrail.js "$@"\n' > /usr/local/bin/tagtrail \
 && chmod 0755 /usr/local/bin/tagtrail \
 && tagtrail --version
USER node
WORKDIR /home/node
ENTRYPOINT []
CMD ["tagtrail", "--help"]
