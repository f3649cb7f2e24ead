#!/usr/bin/env bash
# Benchmarks (not tests): private Dovecot + Redis, vmbridge built and run as a real process.
# Writes bench/results/latest.json and latest.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
npm run build --silent
exec node --import tsx bench/run.ts "$@"
