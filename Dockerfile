# vmbridge container image.
#
#   docker build -t vmbridge .
#   docker build --build-arg VMBRIDGE_UID=$(id -u asterisk) --build-arg VMBRIDGE_GID=$(id -g asterisk) -t vmbridge .
#   docker run -v /var/spool/asterisk:/var/spool/asterisk -v /etc/asterisk:/etc/asterisk:ro \
#              -v /etc/vmbridge:/etc/vmbridge:ro vmbridge
#
# The process runs as a non-root user whose UID/GID should match the asterisk user, so that files
# vmbridge reads (and, later, moves) in the spool keep the owner and mode Asterisk expects.

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY workers ./workers
RUN npx tsc -p tsconfig.build.json \
 && npm prune --omit=dev

FROM node:20-bookworm-slim
ARG VMBRIDGE_UID=1000
ARG VMBRIDGE_GID=1000
RUN groupadd --system --gid "${VMBRIDGE_GID}" vmbridge 2>/dev/null || true \
 && useradd --system --uid "${VMBRIDGE_UID}" --gid "${VMBRIDGE_GID}" --no-create-home --shell /usr/sbin/nologin vmbridge
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY config ./config
USER ${VMBRIDGE_UID}:${VMBRIDGE_GID}
ENTRYPOINT ["node", "/app/dist/src/cli/bin.js"]
CMD ["run"]
