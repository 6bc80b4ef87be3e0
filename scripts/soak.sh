#!/usr/bin/env bash
# Soak test (not in CI): runs the host for DURATION (default 10m) on the local database, or with
# --in-memory (second argument) without one, and samples its resident memory every 10 s. After a
# warm-up (first third), RSS must stay within 10 % of its post-warm-up median, and the run must exit
# 0 (invariants held, nothing failed). Prints the samples, the run's rate over its first and last
# thirds (from its --metrics lines), and a verdict; exit 1 if a bound is broken.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
duration=${1:-10m}
mode=${2:-}
case "$mode" in
  --in-memory) store=(--in-memory) ;;
  "") scripts/pg.sh start >/dev/null
      export ACTORSIM_DB=${ACTORSIM_DB:-$(scripts/pg.sh url)}
      store=() ;;
  *) echo "usage: scripts/soak.sh [DURATION] [--in-memory]" >&2; exit 2 ;;
esac
dotnet build host/ActorSim.Host -c Release -nologo -v q >/dev/null
out=$(mktemp)
metrics=$(mktemp)
dotnet host/ActorSim.Host/bin/Release/net10.0/actorsim.dll run --duration "$duration" --seed 42 --metrics "$metrics" "${store[@]}" >"$out" 2>&1 &
pid=$!
samples=()
t=0
while kill -0 $pid 2>/dev/null; do
  sleep 10; t=$((t + 10))
  rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status 2>/dev/null || true)
  [ -n "$rss" ] || break
  samples+=("$rss")
  echo "t=${t}s rss=$((rss / 1024)) MiB"
done
rc=0
wait $pid || rc=$?
tail -4 "$out"
# Accesses a second over the first and the last third of the run (medians of the per-second lines).
rates=$(grep -v '"final":true' "$metrics" | sed -n 's/.*"accesses_per_s":\([0-9.]*\).*/\1/p')
lines=$(printf '%s\n' "$rates" | grep -c . || true)
if [ "$lines" -ge 3 ]; then
  third=$((lines / 3))
  med() { sort -n | awk '{a[NR]=$1} END {printf "%d", a[int((NR+1)/2)]}'; }
  echo "accesses/s: first third median $(printf '%s\n' "$rates" | head -n "$third" | med), last third median $(printf '%s\n' "$rates" | tail -n "$third" | med)"
fi
[ "$rc" -eq 0 ] || { echo "soak: the run exited $rc"; exit 1; }
n=${#samples[@]}
[ "$n" -ge 6 ] || { echo "soak: too few samples ($n)"; exit 1; }
warm=$((n / 3))
after=("${samples[@]:$warm}")
median=$(printf '%s\n' "${after[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
max=$(printf '%s\n' "${after[@]}" | sort -n | tail -1)
min=$(printf '%s\n' "${after[@]}" | sort -n | head -1)
echo "after warm-up: median $((median / 1024)) MiB, min $((min / 1024)) MiB, max $((max / 1024)) MiB over $((n - warm)) samples"
awk -v m="$median" -v hi="$max" -v lo="$min" 'BEGIN { if (hi > m * 1.10 || lo < m * 0.90) { print "soak: RSS moved more than 10 %"; exit 1 } else print "soak: RSS within 10 %" }'
