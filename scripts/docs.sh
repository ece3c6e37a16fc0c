#!/usr/bin/env bash
# Serves the documentation site locally with live reload (http://127.0.0.1:8000 by default).
# Usage: scripts/docs.sh [mkdocs serve args, e.g. -a 127.0.0.1:8001]
#        scripts/docs.sh build   # the strict build CI runs, into site/
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_python.sh
ensure_venv .venv "docs"
export NO_MKDOCS_2_WARNING=1
if [ "${1:-}" = "build" ]; then
  shift
  exec .venv/bin/mkdocs build --strict "$@"
fi
exec .venv/bin/mkdocs serve "$@"
