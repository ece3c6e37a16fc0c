#!/usr/bin/env bash
# Sets everything up and runs the example project end to end (SQLite, no server to install).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_python.sh
ensure_venv .venv "example"
exec .venv/bin/python example/demo.py
