#!/usr/bin/env bash
# The vmbridge demo on private loopback servers:
#   npm run demo          install what is missing, start Dovecot + Redis + vmbridge, show the
#                         sample voicemails arrive as emails, then a new one left "by Asterisk"
#   npm run demo -- stop  stop everything the demo started
# Everything lives in .demo/ in this folder. Ports: IMAP_PORT (10143), REDIS_PORT (16379),
# HTTP_PORT (18025: vmbridge's health, metrics and the Dovecot push endpoint).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$(pwd)"
DEMO="$ROOT/.demo"
say() { printf '\n\033[1m%s\033[0m\n' "$*"; }

stop_demo() {
  if [ -f "$DEMO/vmbridge.pid" ]; then
    pid="$(cat "$DEMO/vmbridge.pid")"
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$DEMO/vmbridge.pid"
  fi
  if [ -d "$DEMO/servers" ]; then bash scripts/servers.sh stop "$DEMO/servers" || true; fi
}

if [ "${1:-}" = "stop" ]; then
  stop_demo
  echo "demo stopped; remove .demo/ to start from scratch"
  exit 0
fi

say "1/5 Installing what is missing (Dovecot, Redis, sox, npm packages)"
bash scripts/install-deps.sh --demo

stop_demo
rm -rf "$DEMO"
mkdir -p "$DEMO/servers"

say "2/5 Starting a private Dovecot (IMAP) and Redis on 127.0.0.1"
HTTP_PORT="${HTTP_PORT:-18025}"
if (exec 3<>"/dev/tcp/127.0.0.1/$HTTP_PORT") 2>/dev/null; then
  echo "demo: port $HTTP_PORT is in use; choose another with HTTP_PORT=..." >&2
  exit 1
fi
# Dovecot tells vmbridge at once of what mail clients do (docs/push.md).
PUSH_URL="http://127.0.0.1:$HTTP_PORT/dovecot-push" bash scripts/servers.sh start "$DEMO/servers"
# shellcheck disable=SC1091
. "$DEMO/servers/servers.env"

say "3/5 A sample Asterisk spool (two voicemails for 1000, one for 1001, recorded by a real Asterisk)"
cp -r demo/spool "$DEMO/spool"
cp demo/voicemail.conf "$DEMO/voicemail.conf"
find "$DEMO/spool" -name '*.txt' | sort | sed "s#^$DEMO/##"
cat >"$DEMO/vmbridge.yaml" <<YAML
# Settings of the demo; every key is explained in config/vmbridge.example.yaml.
spool:
  dir: $DEMO/spool
  voicemailConf: $DEMO/voicemail.conf
  sweepSeconds: 60
redis:
  url: redis://127.0.0.1:$REDIS_PORT
  prefix: vmbridge-demo
imap:
  host: 127.0.0.1
  port: $IMAP_PORT
  secure: false
  # The demo Dovecot listens on loopback without TLS; never turn this off for a real server.
  requireTls: false
email:
  from: '"Voicemail" <voicemail@example.invalid>'
  timezone: UTC
http:
  port: $HTTP_PORT
  push:
    enabled: true
YAML

say "4/5 Starting vmbridge: every voicemail in the spool becomes an email"
setsid node --import tsx src/cli/bin.ts run --config "$DEMO/vmbridge.yaml" </dev/null >/dev/null 2>"$DEMO/vmbridge.log" &
echo $! >"$DEMO/vmbridge.pid"
node --import tsx demo/show.ts "$IMAP_PORT" 3 30

say "5/5 A new voicemail for 1002 (Carol), written into the spool the way Asterisk writes one"
start_ms=$(date +%s%3N)
node --import tsx demo/leave.ts "$DEMO/spool" 1002 '"Dana Demo" <5550100>' | sed "s#^$DEMO/#  wrote #"
node --import tsx demo/show.ts "$IMAP_PORT" 4 30 | grep -A2 carol
took="$(grep '"mailbox":"1002@default"' "$DEMO/vmbridge.log" | grep '"msg":"reconciled"' | tail -1 | sed -n 's/.*"ms":\([0-9]*\).*/\1/p')"
echo "  vmbridge turned it into an email in ${took:-?} ms (its log: .demo/vmbridge.log); this whole step,"
echo "  including starting two Node programs, took $(( $(date +%s%3N) - start_ms )) ms"

cat <<TXT

vmbridge keeps running. Point any mail client at the demo Dovecot:
  IMAP server 127.0.0.1, port $IMAP_PORT, no encryption, password login
  users: alice / alicepw (mailbox 1000), bob / bobpw (1001), carol / carolpw (1002)
Read an email, or file it in a folder named Work, in the mail client: Dovecot tells vmbridge at
once, and the voicemail moves on the phone side:
                          ls .demo/spool/voicemail/default/1000/*/
Leave another voicemail:  node --import tsx demo/leave.ts .demo/spool 1000 '"Someone" <123>'
Watch the log:            tail -f .demo/vmbridge.log
Stop everything:          npm run demo -- stop
TXT
