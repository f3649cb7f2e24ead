#!/usr/bin/env bash
# Proves the Dockerfile without a container engine: builds a Debian 12 root with debootstrap, gives
# it what node:20-bookworm-slim adds to Debian (Node 20 and npm in /usr/local, user `node` 1000:1000),
# and runs the Dockerfile's own RUN, ENV and HEALTHCHECK lines in a chroot of it, as root for the
# build steps and as the image's user for vmbridge itself.
#
#   sudo bash scripts/prove-container.sh          # build, user step (1000:1000, 106:113, 0:0), --version/--help
#   sudo bash scripts/prove-container.sh --run    # the same, then `vmbridge run` and its HEALTHCHECK
#
# Needs root, debootstrap, git, Node 20 and npm on the host (copied into the root, as Debian 12's own
# nodejs is 18), redis-server for --run, and the network for the Debian mirror (the first bookworm
# mirror in this machine's apt sources) and the npm registry. Not part of `npm test`.
#
# What is proved is the committed tree (git archive HEAD), Dockerfile included. The scratch folder
# is VMB_CT_WORK (default /tmp/vmb-ctroot); the Debian root in it is kept for the next run. Remove it
# with `rm -rf --one-file-system /tmp/vmb-ctroot` once nothing is mounted under it (see findmnt).
set -euo pipefail

WORK="${VMB_CT_WORK:-/tmp/vmb-ctroot}"
case "$WORK" in /tmp/vmb-*) ;; *) echo "refuse: VMB_CT_WORK must be a folder /tmp/vmb-*: $WORK" >&2; exit 1 ;; esac
case "$WORK" in *..* | *//* | */) echo "refuse: VMB_CT_WORK must be a plain path: $WORK" >&2; exit 1 ;; esac
ROOT="$WORK/root"
RUN_SERVICE=0
[ "${1:-}" = --run ] && RUN_SERVICE=1

[ "$(id -u)" = 0 ] || { echo "run as root (debootstrap and chroot need it)" >&2; exit 1; }
for tool in debootstrap git chroot node npm; do
  command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
REPO="$(git -C "$(dirname "$0")" rev-parse --show-toplevel)"

say() { printf '\n== %s\n' "$*"; }

# Nothing may be mounted under the root when files are removed in it.
mounts_under_root() { awk -v r="$ROOT" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/self/mounts; }

# rm -rf of a folder inside the scratch folder only, and only with nothing mounted under the root.
safe_rm() {
  local p="$1"
  case "$p" in "$WORK"/?*) ;; *) echo "refuse to remove $p: not inside $WORK" >&2; exit 1 ;; esac
  case "$p" in *..*) echo "refuse to remove $p" >&2; exit 1 ;; esac
  if [ -n "$(mounts_under_root)" ]; then echo "refuse to remove $p: mounts under $ROOT" >&2; exit 1; fi
  rm -rf --one-file-system -- "$p"
}

# A fresh procfs (not the host's /proc bound in), read-only, for the step that needs one: the
# TypeScript compiler reads /proc/self/exe. Unmounted right after it, and on any exit.
PROC_MOUNTED=0
mount_proc() {
  if mountpoint -q "$ROOT/proc"; then echo "$ROOT/proc is already a mount point" >&2; exit 1; fi
  mount -t proc -o ro,nosuid,nodev,noexec proc "$ROOT/proc"
  PROC_MOUNTED=1
}
umount_proc() {
  if [ "$PROC_MOUNTED" = 1 ]; then umount "$ROOT/proc"; PROC_MOUNTED=0; fi
}

# Processes this script started, by PID: SIGTERM, then SIGKILL after 15 s; the newest first.
SERVICE_PIDS=()
stop_pid() {
  local pid="$1" _
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then echo "PID $pid still running 15 s after SIGTERM: SIGKILL" >&2; kill -KILL "$pid" 2>/dev/null || true; fi
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local i
  umount_proc
  for ((i = ${#SERVICE_PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${SERVICE_PIDS[i]}"; done
}
trap cleanup EXIT

# The first bookworm mirror in apt's sources (deb822 .sources files, then one-line .list files).
debian_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk 'BEGIN { RS = ""; FS = "\n" }
      { uris = ""; suites = ""
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^URIs:/) { uris = $i; sub(/^URIs:[ \t]*/, "", uris) }
          if ($i ~ /^Suites:/) { suites = " " $i " " }
        }
        if (suites ~ /[ \t]bookworm[ \t]/ && uris != "") { split(uris, u, /[ \t]+/); print u[1]; exit }
      }' "$f"
  done
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    sed -e 's/\[[^]]*\]//' | awk '$1 == "deb" && $3 == "bookworm" { print $2 }'
}

# The Dockerfile's instructions, continuation lines joined and comments dropped:
#   df run N | df env N | df arg N   one per line (NUL-separated for run), for stage N (0 = first FROM)
#   df healthcheck | df entrypoint | df cmd   the exec-form arguments, NUL-separated
df() {
  node - "$CTX/Dockerfile" "$@" <<'EOF'
const [file, what, stageArg] = process.argv.slice(2);
const src = require('node:fs').readFileSync(file, 'utf8').split('\n');
const inst = [];
let cur = null, stage = -1;
for (const raw of src) {
  if (/^\s*#/.test(raw)) continue;
  if (cur === null && raw.trim() === '') continue;
  const line = raw.replace(/\\$/, '');
  cur = cur === null ? line : cur + line;
  if (raw.endsWith('\\')) continue;
  const m = /^\s*(\w+)\s+([\s\S]*)$/.exec(cur);
  cur = null;
  if (!m) continue;
  const op = m[1].toUpperCase();
  if (op === 'FROM') stage++;
  inst.push({ op, args: m[2].trim(), stage });
}
const want = Number(stageArg);
const out = [];
const execForm = (s) => JSON.parse(s);
for (const i of inst) {
  if (what === 'run' && i.op === 'RUN' && i.stage === want) out.push(i.args + '\0');
  if (what === 'env' && i.op === 'ENV' && i.stage === want) out.push(i.args + '\n');
  if (what === 'arg' && i.op === 'ARG' && i.stage === want) out.push(i.args + '\n');
  if (what === 'healthcheck' && i.op === 'HEALTHCHECK') out.splice(0, out.length, ...execForm(i.args.replace(/^.*?\bCMD\s+/, '')).map((a) => a + '\0'));
  if (what === 'entrypoint' && i.op === 'ENTRYPOINT') out.splice(0, out.length, ...execForm(i.args).map((a) => a + '\0'));
  if (what === 'cmd' && i.op === 'CMD') out.splice(0, out.length, ...execForm(i.args).map((a) => a + '\0'));
}
process.stdout.write(out.join(''));
EOF
}

BASE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# A command in the root as root, in folder $1, with a clean environment plus the given VAR=value.
in_root() {
  local dir="$1"; shift
  local envs=()
  while [ $# -gt 0 ] && [[ "$1" == *=* ]]; do envs+=("$1"); shift; done
  chroot "$ROOT" /usr/bin/env -i -C "$dir" PATH="$BASE_PATH" HOME=/root DEBIAN_FRONTEND=noninteractive "${envs[@]}" "$@"
}
# A command in the root as UID $1, GID $2, no supplementary groups, as the image's USER would.
# as_user_line only sets AS_USER (the command line), for a background job whose PID is the process's.
as_user_line() {
  local uid="$1" gid="$2" dir="$3"; shift 3
  local envs=()
  while [ $# -gt 0 ] && [[ "$1" == *=* ]]; do envs+=("$1"); shift; done
  AS_USER=(chroot "$ROOT" /usr/bin/setpriv --reuid="$uid" --regid="$gid" --clear-groups
    /usr/bin/env -i -C "$dir" PATH="$BASE_PATH" HOME=/app "${envs[@]}" "$@")
}
as_user() { as_user_line "$@"; "${AS_USER[@]}"; }

# --- the Debian 12 root ------------------------------------------------------------------------
mkdir -p "$WORK"
if [ ! -f "$WORK/debootstrap.done" ]; then
  MIRROR="$(debian_mirror | head -n 1)"
  [ -n "$MIRROR" ] || { echo "no bookworm mirror in the apt sources" >&2; exit 1; }
  say "debootstrap --variant=minbase bookworm $ROOT $MIRROR"
  [ ! -e "$ROOT" ] || safe_rm "$ROOT"
  debootstrap --variant=minbase bookworm "$ROOT" "$MIRROR"
  touch "$WORK/debootstrap.done"
fi
[ -x "$ROOT/bin/sh" ] && [ -f "$ROOT/etc/debian_version" ] || { echo "$ROOT is not a Debian root" >&2; exit 1; }
echo "Debian $(cat "$ROOT/etc/debian_version") in $ROOT"
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
# No service starts inside the root.
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 755 "$ROOT/usr/sbin/policy-rc.d"

# --- what node:20-bookworm-slim adds -----------------------------------------------------------
if [ ! -f "$WORK/base.done" ]; then
  say "Node and npm in /usr/local, user node 1000:1000 (as the node:20-bookworm-slim image)"
  NODE_BIN="$(readlink -f "$(command -v node)")"
  NPM_DIR="$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")"
  case "$("$NODE_BIN" --version)" in v20.*) ;; *) echo "host Node is not 20: $("$NODE_BIN" --version)" >&2; exit 1 ;; esac
  [ -f "$NPM_DIR/package.json" ] || { echo "npm not found at $NPM_DIR" >&2; exit 1; }
  install -m 755 "$NODE_BIN" "$ROOT/usr/local/bin/node"
  mkdir -p "$ROOT/usr/local/lib/node_modules"
  [ ! -e "$ROOT/usr/local/lib/node_modules/npm" ] || safe_rm "$ROOT/usr/local/lib/node_modules/npm"
  cp -r "$NPM_DIR" "$ROOT/usr/local/lib/node_modules/npm"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$ROOT/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$ROOT/usr/local/bin/npx"
  in_root / groupadd --gid 1000 node
  in_root / useradd --uid 1000 --gid node --shell /bin/bash --create-home node
  mkdir -p "$WORK/base-etc"
  cp -p "$ROOT/etc/passwd" "$ROOT/etc/group" "$ROOT/etc/shadow" "$ROOT/etc/gshadow" "$WORK/base-etc/"
  touch "$WORK/base.done"
fi
in_root / node --version
in_root / npm --version
restore_accounts() { cp -p "$WORK/base-etc/passwd" "$WORK/base-etc/group" "$WORK/base-etc/shadow" "$WORK/base-etc/gshadow" "$ROOT/etc/"; }

# --- the build context: the committed tree ----------------------------------------------------
CTX="$WORK/ctx"
[ ! -e "$CTX" ] || safe_rm "$CTX"
mkdir -p "$CTX"
git -C "$REPO" archive HEAD | tar -x -C "$CTX"
echo "context: $(git -C "$REPO" rev-parse --short HEAD)"

# --- stage 0 (build), in /build: the Dockerfile's COPY lines by hand, its RUN lines as written ----
mapfile -d '' BUILD_RUNS < <(df run 0)
[ "${#BUILD_RUNS[@]}" -eq 2 ] || { echo "expected 2 RUN lines in the build stage, found ${#BUILD_RUNS[@]}" >&2; exit 1; }
[ ! -e "$ROOT/build" ] || safe_rm "$ROOT/build"
mkdir -p "$ROOT/build"
cp "$CTX/package.json" "$CTX/package-lock.json" "$ROOT/build/"
# Behind a TLS-inspecting proxy npm needs the CA the host's npm trusts: given to the root's npm too.
NPM_ENV=()
HOST_CAFILE="$(npm config get cafile 2>/dev/null || true)"
[ -n "$HOST_CAFILE" ] && [ "$HOST_CAFILE" != null ] || HOST_CAFILE="${NODE_EXTRA_CA_CERTS:-}"
if [ -n "$HOST_CAFILE" ] && [ -f "$HOST_CAFILE" ]; then
  cp -L "$HOST_CAFILE" "$ROOT/tmp/npm-ca.pem"
  NPM_ENV=(npm_config_cafile=/tmp/npm-ca.pem)
  echo "npm in the root trusts the host npm's CA file"
fi
say "build: RUN ${BUILD_RUNS[0]}"
in_root /build "${NPM_ENV[@]}" /bin/sh -c "${BUILD_RUNS[0]}"
cp "$CTX/tsconfig.json" "$CTX/tsconfig.build.json" "$ROOT/build/"
cp -r "$CTX/src" "$CTX/workers" "$ROOT/build/"
say "build: RUN ${BUILD_RUNS[1]}"
mount_proc
in_root /build /bin/sh -c "${BUILD_RUNS[1]}"
umount_proc

# --- stage 1 (runtime) ------------------------------------------------------------------------
mapfile -d '' RUNS < <(df run 1)
[ "${#RUNS[@]}" -eq 2 ] || { echo "expected 2 RUN lines in the runtime stage, found ${#RUNS[@]}" >&2; exit 1; }
say "runtime: RUN ${RUNS[0]}"
in_root / /bin/sh -c "${RUNS[0]}"
in_root / sox --version
in_root / sh -c 'sox -h | grep "AUDIO FILE FORMATS" | tr " " "\n" | grep -x mp3'

# The user step with each UID/GID; the last one (the defaults) stays for what follows.
USER_STEP="${RUNS[1]}"
DEF_UID="$(df arg 1 | sed -n 's/^VMBRIDGE_UID=//p')"
DEF_GID="$(df arg 1 | sed -n 's/^VMBRIDGE_GID=//p')"
echo "ARG defaults: VMBRIDGE_UID=$DEF_UID VMBRIDGE_GID=$DEF_GID"
say "runtime: user step refuses 0:0"
restore_accounts
if in_root / VMBRIDGE_UID=0 VMBRIDGE_GID=0 /bin/sh -c "$USER_STEP"; then echo "FAIL: 0:0 was accepted" >&2; exit 1; fi
for ids in 106:113 1000:113 106:1000 "$DEF_UID:$DEF_GID"; do
  uid="${ids%%:*}" gid="${ids##*:}"
  say "runtime: user step with VMBRIDGE_UID=$uid VMBRIDGE_GID=$gid"
  restore_accounts
  in_root / VMBRIDGE_UID="$uid" VMBRIDGE_GID="$gid" /bin/sh -c "$USER_STEP"
  in_root / getent passwd "$uid"
  in_root / getent group "$gid"
done
UID_="$DEF_UID" GID_="$DEF_GID"

say "runtime: COPY node_modules, dist, package.json, config into /app"
[ ! -e "$ROOT/app" ] || safe_rm "$ROOT/app"
mkdir -p "$ROOT/app"
cp -r "$ROOT/build/node_modules" "$ROOT/build/dist" "$ROOT/app/"
cp "$CTX/package.json" "$ROOT/app/"
cp -r "$CTX/config" "$ROOT/app/"
if [ -d "$ROOT/app/node_modules/typescript" ]; then echo "FAIL: dev dependencies left after prune" >&2; exit 1; fi

mapfile -t IMAGE_ENV < <(df env 1)
mapfile -d '' ENTRY < <(df entrypoint)
mapfile -d '' CMD < <(df cmd)
mapfile -d '' HEALTH < <(df healthcheck)
echo "ENV ${IMAGE_ENV[*]}"
echo "ENTRYPOINT ${ENTRY[*]}  CMD ${CMD[*]}"

say "as $UID_:$GID_: vmbridge --version, --help"
as_user "$UID_" "$GID_" /app "${IMAGE_ENV[@]}" "${ENTRY[@]}" --version
as_user "$UID_" "$GID_" /app "${IMAGE_ENV[@]}" "${ENTRY[@]}" --help | head -n 5
as_user 106 113 /app "${IMAGE_ENV[@]}" "${ENTRY[@]}" --version

if [ "$RUN_SERVICE" != 1 ]; then say "done (add --run to start vmbridge and ask its HEALTHCHECK)"; exit 0; fi

# --- vmbridge run with a Redis, and the HEALTHCHECK ----------------------------------------------
command -v redis-server >/dev/null || { echo "missing: redis-server" >&2; exit 1; }
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    ss -ltnH "sport = :$p" | grep -q . || { echo "$p"; return; }
  done
}
REDIS_PORT="$(free_port)"
HTTP_PORT="$(free_port)"
say "redis-server on 127.0.0.1:$REDIS_PORT"
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --daemonize no >"$WORK/redis.log" 2>&1 &
SERVICE_PIDS+=("$!")
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done

# A spool with one empty mailbox and its voicemail.conf, owned as Asterisk's would be.
mkdir -p "$ROOT/var/spool/asterisk/voicemail/default/1000/INBOX" "$ROOT/etc/asterisk"
printf '[general]\nformat=wav\n\n[default]\n1000 => 1234,Test User,test@example.com,,imappassword=test\n' >"$ROOT/etc/asterisk/voicemail.conf"
chown -R "$UID_:$GID_" "$ROOT/var/spool/asterisk"
chmod -R u+rwX,g+rwX,o-rwx "$ROOT/var/spool/asterisk"

# The chroot shares this machine's loopback, so the HTTP port is a free one instead of the image's;
# the HEALTHCHECK reads it from VMBRIDGE_HTTP_PORT as it would in a container.
RUN_ENV=("${IMAGE_ENV[@]}" VMBRIDGE_HTTP_PORT="$HTTP_PORT" VMBRIDGE_REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
  VMBRIDGE_IMAP_HOST=127.0.0.1 VMBRIDGE_IMAP_PORT=9 VMBRIDGE_IMAP_SECURE=false VMBRIDGE_IMAP_REQUIRE_TLS=false)
say "as $UID_:$GID_: ${ENTRY[*]} ${CMD[*]} (HTTP on 127.0.0.1:$HTTP_PORT)"
# chroot, setpriv and env each exec the next, so this PID is vmbridge's own.
as_user_line "$UID_" "$GID_" /app "${RUN_ENV[@]}" "${ENTRY[@]}" "${CMD[@]}"
"${AS_USER[@]}" >"$WORK/vmbridge.log" 2>&1 &
VMB_PID="$!"
SERVICE_PIDS+=("$VMB_PID")
ok=0
for _ in $(seq 60); do
  if as_user "$UID_" "$GID_" /app "${RUN_ENV[@]}" "${HEALTH[@]}"; then ok=1; break; fi
  kill -0 "$VMB_PID" 2>/dev/null || break
  sleep 0.5
done
head -c 3000 "$WORK/vmbridge.log"; echo
[ "$ok" = 1 ] || { echo "FAIL: the HEALTHCHECK never passed" >&2; exit 1; }
echo "HEALTHCHECK: exit 0 while vmbridge runs"
echo "readyz: $(as_user "$UID_" "$GID_" /app node -e "require('node:http').get('http://127.0.0.1:$HTTP_PORT/readyz',r=>{r.pipe(process.stdout)})")"
kill -TERM "$VMB_PID"
for _ in $(seq 150); do kill -0 "$VMB_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$VMB_PID" 2>/dev/null; then echo "FAIL: vmbridge still runs 15 s after SIGTERM" >&2; exit 1; fi
rc=0; wait "$VMB_PID" || rc=$?
echo "vmbridge stopped on SIGTERM, exit $rc"
grep -E '"msg":"(audio tool ready|health and metrics on http|vmbridge started|stopping)"' "$WORK/vmbridge.log" || true
if as_user "$UID_" "$GID_" /app "${RUN_ENV[@]}" "${HEALTH[@]}"; then echo "FAIL: HEALTHCHECK passes with vmbridge stopped" >&2; exit 1; fi
echo "HEALTHCHECK: exit 1 once vmbridge has stopped"
say "done"
