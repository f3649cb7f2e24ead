#!/usr/bin/env bash
# Benchmarks (not tests): private Dovecot + Redis, vmbridge built and run as a real process.
# Writes bench/results/latest.json and latest.md, then transcribe.json and transcribe.md
# (bench/transcribe.ts), odbc.json and odbc.md (bench/odbc.ts), and lanes.json and lanes.md
# (bench/lanes.ts); each can also be run alone.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
npm run build --silent
node --import tsx bench/run.ts "$@"
node --import tsx bench/transcribe.ts
# Asterisk's ODBC voicemail table at 5,000 mailboxes on PostgreSQL and MariaDB (bench/odbc.ts).
node --import tsx bench/odbc.ts
# New voicemail during the start-up pass over thousands of mailboxes, beside the same when idle
# (bench/lanes.ts; BENCH_LANES_MAILBOXES, 2,000 unless set).
exec node --import tsx bench/lanes.ts
