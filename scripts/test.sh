#!/usr/bin/env bash
# Runs the whole test suite: unit tests, then integration tests against private Dovecot and Redis
# instances that the tests start themselves (install them with scripts/install-deps.sh).
# Files run one at a time: integration tests start real servers and watch real folders, and
# their timing-sensitive parts (lamps within 2 s, SIP retransmissions) share two cores badly.
# Extra arguments go to node's test runner, e.g. --test-name-pattern=quota.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
shopt -s nullglob

# Installs the servers and tools the tests need (Dovecot, Cyrus, Redis, Kamailio with its TLS module, sox,
# systemd-analyze) and the npm packages when they are missing (quick when they are there).
bash scripts/install-deps.sh --test

# A file that hangs (a handle left open keeps node's test runner waiting forever) fails after this
# many seconds and is named, instead of holding the whole run. The slowest file takes about 2 min.
FILE_TIMEOUT="${VMB_TEST_FILE_TIMEOUT:-600}"
UNIT_TIMEOUT="${VMB_TEST_UNIT_TIMEOUT:-900}"

failed=()
# timeout signals the whole process group, so the runner's children and the servers the tests
# started end with it.
# Usage: run_bounded SECONDS LABEL [runner arguments and files...]
run_bounded() {
  local limit="$1" label="$2"
  shift 2
  local started=$SECONDS rc=0
  timeout --kill-after=15 "$limit" node --import tsx --test --test-concurrency=1 "$@" || rc=$?
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "test.sh: $label did not finish within ${limit} s (a test or an open handle hangs)" >&2
    failed+=("$label (timed out)")
  elif [ "$rc" -ne 0 ]; then
    failed+=("$label")
  fi
  durations+=("$((SECONDS - started)) s  $label")
}

# Unit files run in one test runner (each in its own process), bounded as a whole; integration
# files each in a runner of their own, so a hang is bounded and named by file.
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
  if [ "$dir" = test/unit ]; then
    run_bounded "$UNIT_TIMEOUT" "$dir" "$@" "${files[@]}"
  else
    for file in "${files[@]}"; do run_bounded "$FILE_TIMEOUT" "$file" "$@" "$file"; done
  fi
}

durations=()
# Both directories run even if the first fails, so one run shows every failure.
run_dir test/unit "$@"
run_dir test/integration "$@"

echo "==> slowest files"
printf '%s\n' "${durations[@]}" | sort -rn | head -8 | sed 's/^/    /'

if [ "${#failed[@]}" -gt 0 ]; then
  echo "test.sh: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "test.sh: all tests passed"
