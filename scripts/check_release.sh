#!/usr/bin/env bash
# The release as users get it: builds the sdist and the wheel, runs `twine check`, checks the
# wheel's contents (scripts/check_wheel.py), installs the WHEEL (not the source tree) into a
# clean virtualenv and runs the example project against it from a copy outside the checkout.
# Usage: scripts/check_release.sh   (needs .venv with the `release` extra; scripts/test.sh has it)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_python.sh

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "==> python -m build (sdist and wheel)"
.venv/bin/python -m build --outdir "$work/dist" . >"$work/build.log" 2>&1 \
  || { cat "$work/build.log"; exit 1; }
echo "==> twine check"
.venv/bin/python -m twine check --strict "$work"/dist/*
wheel=$(ls "$work"/dist/*.whl)
.venv/bin/python scripts/check_wheel.py "$wheel"

echo "==> the wheel in a clean virtualenv runs the example project"
python=$(find_python)
"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$wheel[example]"
cp -r example "$work/example"
(
  cd "$work"  # nothing of the checkout on sys.path: the package must come from the wheel
  where=$(venv/bin/python -c 'import django_generic_tasks as t; print(t.__file__)')
  case "$where" in
    "$work/venv/"*) echo "    django_generic_tasks from $where" ;;
    *) echo "error: django_generic_tasks imported from $where, not the wheel" >&2; exit 1 ;;
  esac
  venv/bin/python example/demo.py >"$work/example.log" 2>&1 || { cat "$work/example.log"; exit 1; }
  for expected in "run() returned 1" "the worker ran it: succeeded" "invalid params -> HTTP 422" \
      "Subject: Hello over HTTP"; do
    grep -qF "$expected" "$work/example.log" \
      || { cat "$work/example.log"; echo "error: example output lacks: $expected" >&2; exit 1; }
  done
  echo "    example project ran end to end against the installed wheel"
)
