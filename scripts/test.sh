#!/usr/bin/env bash
# Runs the whole test suite: unit tests, then integration tests against private Dovecot and Redis
# instances that the tests start themselves (install them with scripts/install-deps.sh).
# Files run one at a time: integration tests start real servers and watch real folders.
# Extra arguments go to node's test runner, e.g. --test-name-pattern=quota.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
shopt -s nullglob

# Installs the servers and tools the tests need (Dovecot, Cyrus, Redis, Kamailio, sox,
# systemd-analyze) and the npm packages when they are missing (quick when they are there).
bash scripts/install-deps.sh --test

failed=()
run_dir() {
  local dir="$1"
  shift
  local files=("$dir"/*.test.ts)
  if [ "${#files[@]}" -eq 0 ]; then
    echo "test.sh: no *.test.ts files in $dir" >&2
    failed+=("$dir (no tests)")
    return
  fi
  printf '==> %s: %d files\n' "$dir" "${#files[@]}"
  if ! node --import tsx --test --test-concurrency=1 "$@" "${files[@]}"; then
    failed+=("$dir")
  fi
}

# Both directories run even if the first fails, so one run shows every failure.
run_dir test/unit "$@"
run_dir test/integration "$@"

if [ "${#failed[@]}" -gt 0 ]; then
  echo "test.sh: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "test.sh: all tests passed"
