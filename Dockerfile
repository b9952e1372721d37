# syntax=docker/dockerfile:1
# The tagtrail image: the bundled CLI on PATH as `tagtrail`, run by the unprivileged user node.
# It is meant as a GitLab CI job image too, so it keeps a shell (/bin/sh) and has no ENTRYPOINT
# (the node base image's is cleared): the runner starts the job's script with the shell.
#
#   docker build -t registry.gitlab.com/tagtrail/tagtrail:0.1.0 .
#   docker run --rm registry.gitlab.com/tagtrail/tagtrail:0.1.0 tagtrail --help
#   docker run -p 8080:8080 -v tagtrail:/var/lib/tagtrail -e TAGTRAIL_REGISTRY=https://registry.example.com registry.gitlab.com/tagtrail/tagtrail:0.1.0

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

# Runtime dependencies only. Install scripts are skipped (package.json's `prepare` builds the
# bundle, and neither esbuild nor scripts/ is here), then the one native module is built: here,
# where the compilers are, and only its result is copied on.
FROM node:20-alpine AS deps
RUN apk add --no-cache python3 make g++
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm rebuild better-sqlite3

FROM node:20-alpine
ENV NODE_ENV=production
# serve's defaults in a container (docs/deploy.md): listen on every interface, the SQLite catalog
# on the data volume. Every setting has a TAGTRAIL_* variable; set TAGTRAIL_DB=postgres://… for
# PostgreSQL. The CLI's own defaults (127.0.0.1, ./tagtrail.db) suit a workstation, not a container.
# TAGTRAIL_AUTH is left to whoever runs the image: on 0.0.0.0 serve refuses to start until it says
# who may read the catalog, gitlab (sign in with GitLab) or none (anyone who reaches the port);
# docs/access.md. The image never opens the catalog by itself.
ENV TAGTRAIL_LISTEN=0.0.0.0:8080 \
    TAGTRAIL_DB=sqlite:/var/lib/tagtrail/tagtrail.db
WORKDIR /opt/tagtrail
COPY package.json ./
COPY bin ./bin
COPY --from=deps /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
RUN printf '#!/bin/sh\nexec node /opt/tagtrail/bin/tagtrail.js "$@"\n' > /usr/local/bin/tagtrail \
 && chmod 0755 /usr/local/bin/tagtrail \
 && tagtrail --version \
 && mkdir -p /var/lib/tagtrail \
 && chown node:node /var/lib/tagtrail
# Declared after the chown, so a fresh volume starts owned by node.
VOLUME /var/lib/tagtrail
EXPOSE 8080
USER node
WORKDIR /var/lib/tagtrail
# No ENTRYPOINT: as a GitLab CI job image the runner starts the job script with the shell. Run
# without a command, the image serves the catalog; `docker run … tagtrail annotate …` runs a command.
ENTRYPOINT []
CMD ["tagtrail", "serve"]
