#!/usr/bin/env bash
# Benchmarks (not tests): private Dovecot + Redis, vmbridge built and run as a real process.
# Writes bench/results/latest.json and latest.md, then transcribe.json and transcribe.md
# (bench/transcribe.ts, which can also be run alone).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
npm run build --silent
node --import tsx bench/run.ts "$@"
exec node --import tsx bench/transcribe.ts
