#!/usr/bin/env bash
# Starts the local PostgreSQL (durable settings), builds, and runs the main job.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
scripts/pg.sh start
export ACTORSIM_DB=${ACTORSIM_DB:-$(scripts/pg.sh url)}
dotnet build host/ActorSim.Host -c Release -nologo -v q
exec dotnet host/ActorSim.Host/bin/Release/net10.0/actorsim.dll "${@:-run}"
