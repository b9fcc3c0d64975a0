#!/usr/bin/env bash
# make bench: seeds, measures the raw ceilings and our path in one run, writes docs/benchmarks.*.
# Leaves the local servers as it found them: it stops only what it had to start.
set -euo pipefail
cd "$(dirname "$0")/.."
started_here=()
for svc in kafka cassandra registry; do
  if ! bash infra/services.sh status "$svc" | grep -Eq 'running|external'; then started_here+=("$svc"); fi
done
if ((${#started_here[@]})); then
  trap 'echo "bench: stopping ${started_here[*]} (they were not running before)"; bash infra/services.sh down "${started_here[@]}"' EXIT
fi
bash infra/services.sh up
node dist/src/cli.js migrate >/dev/null
node dist/bench/bench.js "$@"
