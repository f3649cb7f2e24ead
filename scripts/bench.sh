#!/usr/bin/env bash
# Benchmarks (not tests): private Dovecot + Redis, vmbridge built and run as a real process.
# Writes bench/results/latest.json and latest.md, then transcribe.json and transcribe.md
# (bench/transcribe.ts) and odbc.json and odbc.md (bench/odbc.ts); each can also be run alone.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
npm run build --silent
node --import tsx bench/run.ts "$@"
node --import tsx bench/transcribe.ts
# Asterisk's ODBC voicemail table at 5,000 mailboxes on PostgreSQL and MariaDB (bench/odbc.ts).
exec node --import tsx bench/odbc.ts
