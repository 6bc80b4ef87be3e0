#!/usr/bin/env bash
# Runs every test project against a local PostgreSQL (started here, fsync off) and prints one
# plain line "N passed, N failed" summed over all projects. Exit 0 only if nothing failed and
# at least one test ran.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

scripts/pg.sh start --fast || { echo "test.sh: PostgreSQL did not start" >&2; echo "0 passed, 1 failed"; exit 3; }
export ACTORSIM_DB=${ACTORSIM_DB:-$(scripts/pg.sh url)}
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

results="$root/.data/test-results"
rm -rf "$results"; mkdir -p "$results"

if ! dotnet build ActorSim.sln -c Release -nologo -v q; then
  echo "test.sh: build failed" >&2
  echo "0 passed, 1 failed"
  exit 1
fi

status=0
for proj in tests/*/*.csproj; do
  name=$(basename "$proj" .csproj)
  echo "== $name"
  dotnet test "$proj" -c Release --no-build --nologo \
    --logger "trx;LogFileName=$name.trx" --results-directory "$results" "$@" || status=1
done

passed=0; failed=0; total=0
for trx in "$results"/*.trx; do
  [ -f "$trx" ] || continue
  line=$(grep -o '<Counters [^>]*>' "$trx" | head -1)
  get() { echo "$line" | grep -o " $1=\"[0-9]*\"" | grep -o '[0-9]*'; }
  passed=$((passed + $(get passed))); failed=$((failed + $(get failed))); total=$((total + $(get executed)))
done
# A project that crashed before writing its TRX counts as a failure.
nproj=$(ls tests/*/*.csproj | wc -l); ntrx=$(ls "$results"/*.trx 2>/dev/null | wc -l)
[ "$ntrx" -lt "$nproj" ] && failed=$((failed + nproj - ntrx))
echo "$passed passed, $failed failed"
[ $status = 0 ] && [ $failed = 0 ] && [ $total -gt 0 ] || exit 1
