#!/usr/bin/env bash
# Installs what the test suite needs on a Debian or Ubuntu machine: the real servers the tests run
# against (Dovecot IMAP, Redis, Kamailio as a SIP peer) and the npm packages. Safe to run again: it only does what is
# missing.
#
#   bash scripts/install-deps.sh            system packages + npm ci (when needed)
#   bash scripts/install-deps.sh --no-npm   system packages only
set -euo pipefail

PACKAGES=(redis-server dovecot-core dovecot-imapd kamailio netcat-openbsd ca-certificates)

usage() {
  sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'
}

run_npm=1
for arg in "$@"; do
  case "$arg" in
    --no-npm) run_npm=0 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "install-deps: unknown argument '$arg'" >&2; usage >&2; exit 2 ;;
  esac
done

cd "$(dirname "${BASH_SOURCE[0]}")/.."
step() { printf '==> %s\n' "$*"; }

# --- system packages -------------------------------------------------------------------------

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-deps: this script needs a Debian/Ubuntu system (apt-get, dpkg-query)." >&2
  echo "Install these by other means: ${PACKAGES[*]}" >&2
  exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
  if [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" != "install ok installed" ]; then
    missing+=("$pkg")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  step "system packages already installed: ${PACKAGES[*]}"
else
  as_root=()
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "install-deps: missing ${missing[*]}, and this is not root and sudo is not available." >&2
      exit 1
    fi
    as_root=(sudo)
  fi
  step "missing system packages: ${missing[*]}"
  step "apt-get update"
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
  # The kamailio package would start a system-wide SIP proxy on port 5060 right after installing.
  # The tests run their own private Kamailio, so that start is refused for this install only, with
  # a policy-rc.d (invoke-rc.d and deb-systemd-invoke ask it) that refuses kamailio and allows
  # everything else. An existing policy-rc.d is the administrator's and is left to decide. Nothing
  # is stopped or disabled: the unit stays as the package installs it.
  policy=/usr/sbin/policy-rc.d
  temp_policy=0
  if [[ " ${missing[*]} " == *" kamailio "* ]] && [ ! -e "$policy" ]; then
    step "refusing the kamailio system service start during this install ($policy, removed afterwards)"
    printf '#!/bin/sh\n# Written by vmbridge scripts/install-deps.sh for one apt-get run.\n[ "$1" = kamailio ] && exit 101\nexit 0\n' |
      "${as_root[@]}" tee "$policy" >/dev/null
    "${as_root[@]}" chmod 755 "$policy"
    temp_policy=1
  fi
  # Only what is missing: packages already present are not upgraded behind the user's back.
  step "apt-get install ${missing[*]}"
  install_status=0
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" || install_status=$?
  if [ "$temp_policy" -eq 1 ]; then "${as_root[@]}" rm -f "$policy"; fi
  if [ "$install_status" -ne 0 ]; then exit "$install_status"; fi
  # The tests start their own private instances on random loopback ports; a system instance that
  # the package may have started does not get in their way.
fi

# --- npm packages ----------------------------------------------------------------------------

if [ "$run_npm" -eq 0 ]; then
  step "skipping npm (--no-npm)"
  exit 0
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "install-deps: node and npm are needed (Node 20 or newer); install them first." >&2
  exit 1
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
  echo "install-deps: Node $(node --version) is too old; vmbridge needs Node 20 or newer." >&2
  exit 1
fi

# npm writes node_modules/.package-lock.json on every install: it is the freshness stamp.
stamp=node_modules/.package-lock.json
[ -e "$stamp" ] || stamp=node_modules
if [ ! -d node_modules ]; then
  step "npm ci (node_modules is missing)"
  npm ci
elif [ package-lock.json -nt "$stamp" ]; then
  step "npm ci (package-lock.json is newer than node_modules)"
  npm ci
else
  step "node_modules is up to date with package-lock.json"
fi
step "done"
