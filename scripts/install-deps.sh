#!/usr/bin/env bash
# Installs what the demo or the test suite needs on a Debian or Ubuntu machine, and the npm
# packages. Safe to run again: it only does what is missing.
#
#   bash scripts/install-deps.sh --demo     Dovecot IMAP, Redis, sox with MP3 (what npm run demo runs)
#   bash scripts/install-deps.sh [--test]   the same, plus the test suite's other servers and tools
#                                           (Cyrus IMAP, Kamailio, systemd-analyze, netcat)
#   add --no-npm                            system packages only, no npm ci
set -euo pipefail

# Both the demo and the tests run a private Dovecot and Redis (redis-server pulls in redis-tools,
# whose redis-cli joins the tests' three-node cluster); vmbridge attaches recordings as MP3
# made with sox, which needs libsox-fmt-mp3 for that format.
DEMO_PACKAGES=(redis-server dovecot-core dovecot-imapd sox libsox-fmt-mp3 ca-certificates)
# cyrus-common (Cyrus's master, ctl_cyrusdb) and sasl2-bin (saslpasswd2) for the private Cyrus IMAP
# of test/integration/cyrus.test.ts; its imapd comes from the cyrus-imapd package, unpacked below.
# kamailio is the SIP peer of the SIP NOTIFY tests, and kamailio-tls-modules its tls module (SIP over
# TLS, with certificates from the tests' private CA); systemd gives systemd-analyze, which checks the
# unit in config/systemd (test/integration/packaging.test.ts). The transcription tests make speech
# with espeak-ng and transcribe it with PocketSphinx and its en-us model (docs/transcription.md).
# PostgreSQL and MariaDB hold Asterisk's ODBC voicemail table in test/integration/store-odbc.test.ts
# (private servers on random ports, started by test/support/databases.ts). socat links two
# pseudo-terminals into the serial line of the SMDI tests. chromium is the headless browser that
# test/integration/status-page.test.ts drives (through playwright-core) to look at the status page.
TEST_PACKAGES=("${DEMO_PACKAGES[@]}" kamailio kamailio-tls-modules cyrus-common sasl2-bin netcat-openbsd systemd espeak-ng pocketsphinx pocketsphinx-en-us openssl postgresql mariadb-server mariadb-client socat chromium)
# Packages whose install would start a system-wide service the tests do not want (kamailio: a SIP
# proxy on 5060; cyrus-common: a Cyrus master; exim4, which cyrus-common pulls in as the default
# MTA; saslauthd from sasl2-bin). The tests run their own private instances on random ports.
NO_START=(kamailio cyrus-imapd exim4 saslauthd postgresql mariadb)
CYRUS_CACHE=.cache/cyrus

usage() {
  sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
}

run_npm=1
for_tests=1
for arg in "$@"; do
  case "$arg" in
    --no-npm) run_npm=0 ;;
    --demo) for_tests=0 ;;
    --test) for_tests=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "install-deps: unknown argument '$arg'" >&2; usage >&2; exit 2 ;;
  esac
done

cd "$(dirname "${BASH_SOURCE[0]}")/.."
step() { printf '==> %s\n' "$*"; }

# apt-get install, with no system-wide start of the NO_START services. Such a start is refused for
# this one apt-get run, with a policy-rc.d (invoke-rc.d and deb-systemd-invoke ask it) that refuses
# those services and allows everything else. Services already running (the tests' own Dovecot and
# Redis included) are not touched. An existing policy-rc.d is the administrator's and is left to
# decide. Nothing is stopped or disabled: the units stay as the packages install them.
apt_install() {
  local policy=/usr/sbin/policy-rc.d temp_policy=0 status=0
  if [ ! -e "$policy" ]; then
    step "refusing the system service starts of ${NO_START[*]} during this install ($policy, removed afterwards)"
    {
      printf '#!/bin/sh\n# Written by vmbridge scripts/install-deps.sh for one apt-get run.\n'
      printf 'case "$1" in\n  %s) exit 101 ;;\nesac\nexit 0\n' "$(IFS='|'; echo "${NO_START[*]}")"
    } | "${as_root[@]}" tee "$policy" >/dev/null
    "${as_root[@]}" chmod 755 "$policy"
    temp_policy=1
  fi
  step "apt-get install $*"
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" || status=$?
  if [ "$temp_policy" -eq 1 ]; then "${as_root[@]}" rm -f "$policy"; fi
  if [ "$status" -ne 0 ]; then exit "$status"; fi
}

# Sets as_root to what runs a command as root: nothing for root, sudo otherwise.
as_root=()
need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null 2>&1; then
      echo "install-deps: $1, and this is not root and sudo is not available." >&2
      exit 1
    fi
    as_root=(sudo)
  fi
}

# --- system packages -------------------------------------------------------------------------

if [ "$for_tests" -eq 1 ]; then PACKAGES=("${TEST_PACKAGES[@]}"); else PACKAGES=("${DEMO_PACKAGES[@]}"); fi

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
  need_root "missing ${missing[*]}"
  step "missing system packages: ${missing[*]}"
  step "apt-get update"
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
  # Only what is missing: packages already present are not upgraded behind the user's back.
  apt_install "${missing[@]}"
  # The tests start their own private instances on random loopback ports; a system instance that
  # the package may have started does not get in their way.
fi

# --- Cyrus imapd, unpacked (tests only) ------------------------------------------------------
# Debian's cyrus-imapd conflicts with dovecot-imapd (both provide imap-server), so it is not
# installed: the package of the same version as cyrus-common is unpacked into $CYRUS_CACHE, where
# test/support/cyrus.ts finds its imapd. Nothing of it is run from there by anything else.

cyrus_version="$(dpkg-query -W -f='${Version}' cyrus-common 2>/dev/null || true)"
cyrus_imapd="$CYRUS_CACHE/pkg/usr/lib/cyrus/bin/imapd"
if [ "$for_tests" -eq 0 ]; then
  step "Cyrus imapd not needed for the demo"
elif [ -x "$cyrus_imapd" ] && [ "$(cat "$CYRUS_CACHE/version" 2>/dev/null || true)" = "$cyrus_version" ]; then
  step "cyrus-imapd $cyrus_version already unpacked in $CYRUS_CACHE"
else
  step "unpacking cyrus-imapd $cyrus_version into $CYRUS_CACHE (not installed: it conflicts with dovecot-imapd)"
  download_dir="$(mktemp -d)"
  # apt-get download fetches as the _apt user where it can write the folder; else it warns.
  if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then chown _apt "$download_dir"; fi
  download() { (cd "$download_dir" && apt-get download "cyrus-imapd=$1") }
  if ! download "$cyrus_version"; then
    # The package lists may be missing or old (a machine whose lists were cleaned).
    need_root "cyrus-imapd $cyrus_version could not be downloaded"
    step "apt-get update"
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
    if ! download "$cyrus_version"; then
      # The archive has moved on to a newer version: take cyrus-common to it, then its imapd.
      step "cyrus-imapd $cyrus_version is no longer offered: upgrading cyrus-common"
      apt_install --only-upgrade cyrus-common
      cyrus_version="$(dpkg-query -W -f='${Version}' cyrus-common)"
      download "$cyrus_version"
    fi
  fi
  rm -rf "$CYRUS_CACHE/pkg"
  mkdir -p "$CYRUS_CACHE"
  dpkg-deb -x "$download_dir"/cyrus-imapd_*.deb "$CYRUS_CACHE/pkg"
  printf '%s\n' "$cyrus_version" >"$CYRUS_CACHE/version"
  rm -rf "$download_dir"
  [ -x "$cyrus_imapd" ] || { echo "install-deps: $cyrus_imapd is missing after unpacking" >&2; exit 1; }
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
