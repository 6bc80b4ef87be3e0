#!/usr/bin/env bash
# Starts the local PostgreSQL (durable settings), builds, and runs the main job.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/pg.sh start
export ACTORSIM_DB=${ACTORSIM_DB:-$(scripts/pg.sh url)}
dotnet build host/ActorSim.Host -c Release -nologo -v q
# Default: a 30-second seeded simulation on the local database; any arguments replace it
# (e.g. scripts/run.sh run --duration 5m --kernel 6.17, or scripts/run.sh scenario scenarios/*.yaml).
if [ $# -eq 0 ]; then set -- run --duration 30s; fi
exec dotnet host/ActorSim.Host/bin/Release/net10.0/actorsim.dll "$@"
