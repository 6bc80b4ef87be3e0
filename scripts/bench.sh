#!/usr/bin/env bash
# The benchmark: starts the local PostgreSQL (durable settings unless --fast is given first), builds,
# and runs `actorsim bench` (pass --quick for a run under 5 minutes, --json for a machine line).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
if [ "${1:-}" = "--fast" ]; then shift; scripts/pg.sh start --fast; else scripts/pg.sh start; fi
export ACTORSIM_DB=${ACTORSIM_DB:-$(scripts/pg.sh url)}
dotnet build host/ActorSim.Host -c Release -nologo -v q
exec dotnet host/ActorSim.Host/bin/Release/net10.0/actorsim.dll bench "$@"
