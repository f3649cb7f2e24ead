# vmbridge container image.
#
#   docker build -t vmbridge .
#   docker build --build-arg VMBRIDGE_UID=$(id -u asterisk) --build-arg VMBRIDGE_GID=$(id -g asterisk) -t vmbridge .
#   docker run -v /var/spool/asterisk:/var/spool/asterisk -v /etc/asterisk:/etc/asterisk:ro \
#              -v /etc/vmbridge:/etc/vmbridge:ro vmbridge
#
# compose.yaml next to this file runs it with Redis; docs/install.md explains both.
#
# The process runs as a non-root user whose UID/GID should match the asterisk user, so that files
# vmbridge reads and moves in the spool keep the owner and mode Asterisk expects. The defaults
# (1000:1000) build as they are; `docker run --user` or compose's `user:` can still pick another
# UID/GID at run time, since nothing in the image needs the user's name.

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY workers ./workers
RUN npx tsc -p tsconfig.build.json \
 && npm prune --omit=dev --no-audit --no-fund

FROM node:20-bookworm-slim
ARG VMBRIDGE_UID=1000
ARG VMBRIDGE_GID=1000

# SoX with its MP3 format: vmbridge attaches voicemail as MP3 by default (email.audio) and will not
# start without them unless every mailbox attaches the original audio.
RUN apt-get update \
 && apt-get install -y --no-install-recommends sox libsox-fmt-mp3 \
 && rm -rf /var/lib/apt/lists/*

# The user vmbridge runs as. The base image already has `node` with UID/GID 1000, so a UID or GID
# that is taken is reused (and `node` renamed to vmbridge) rather than created twice. Other accounts
# that hold the id keep their name: only the number matters for the spool. Root is refused.
RUN set -eu; \
    uid="${VMBRIDGE_UID}"; gid="${VMBRIDGE_GID}"; \
    case "$uid:$gid" in \
      *[!0-9:]*|:*|*:|*:*:*) echo "VMBRIDGE_UID and VMBRIDGE_GID must be numbers" >&2; exit 1;; \
      0:*|*:0) echo "VMBRIDGE_UID and VMBRIDGE_GID must not be 0 (root)" >&2; exit 1;; \
    esac; \
    group="$(getent group "$gid" | cut -d: -f1)"; \
    if [ -z "$group" ]; then groupadd --gid "$gid" vmbridge; group=vmbridge; \
    elif [ "$group" = node ]; then groupmod --new-name vmbridge node; group=vmbridge; fi; \
    user="$(getent passwd "$uid" | cut -d: -f1)"; \
    if [ -z "$user" ]; then \
      useradd --uid "$uid" --gid "$gid" --no-create-home --home-dir /app --shell /usr/sbin/nologin vmbridge; \
    elif [ "$user" = node ]; then \
      usermod --login vmbridge --gid "$gid" --home /app --shell /usr/sbin/nologin node; \
    fi; \
    echo "vmbridge runs as $(getent passwd "$uid" | cut -d: -f1) ($uid), group $group ($gid)"

WORKDIR /app
ENV NODE_ENV=production
# Settings: /etc/vmbridge/vmbridge.yaml when it exists (mount it read-only), then VMBRIDGE_*
# variables, which win over the file; with no file, the variables alone (config/README.md).
# The health listener is on 127.0.0.1:9465 by default; the image puts it on 8080, on the container's
# own loopback address, where the HEALTHCHECK below asks. Being a variable it wins
# over http.port in the settings file: to move the port, set VMBRIDGE_HTTP_PORT; to let a
# monitoring system reach /readyz and /metrics, set VMBRIDGE_HTTP_HOST=0.0.0.0 and publish the port.
# VMBRIDGE_HTTP_PORT=0 turns the listener off, and with it the health check (run with --no-healthcheck).
ENV VMBRIDGE_HTTP_PORT=8080
# Asterisk's externnotify runs outside the container, so nothing here would use the notify socket
# (notify.socket): new voicemail is seen by the spool watcher and the sweep. To share the socket
# with a `vmbridge notify` on the host, mount a directory at /run/vmbridge and set it to true.
ENV VMBRIDGE_NOTIFY_LISTEN=false
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY config ./config
USER ${VMBRIDGE_UID}:${VMBRIDGE_GID}

# GET /healthz answers 200 while the process runs (the image has no curl, so Node asks). It follows
# VMBRIDGE_HTTP_PORT and VMBRIDGE_HTTP_HOST (a wildcard address is asked on 127.0.0.1). /readyz,
# which also needs Redis, is left to monitoring: a Redis outage is not a reason to replace vmbridge.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "const e=process.env,h=e.VMBRIDGE_HTTP_HOST,host=!h||h==='0.0.0.0'||h==='::'?'127.0.0.1':h;require('node:http').get({host,port:e.VMBRIDGE_HTTP_PORT,path:'/healthz',timeout:4000},r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1)).on('timeout',()=>process.exit(1))"]

ENTRYPOINT ["node", "/app/dist/src/cli/bin.js"]
CMD ["run"]
