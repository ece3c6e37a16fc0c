#!/usr/bin/env bash
# Finds a Python >= 3.12 interpreter and prints its path; exits 1 with a clear message otherwise.
# Sourced by the other scripts.  Honours pyenv where it is installed.
find_python() {
  local candidate version
  for candidate in "${PYTHON:-}" python3.13 python3.12 python3; do
    [ -n "$candidate" ] || continue
    command -v "$candidate" >/dev/null 2>&1 || continue
    for version in "" $( (pyenv versions --bare 2>/dev/null || true) | grep -E '^3\.(1[2-9])(\.|$)' | sort -rV); do
      if [ -n "$version" ]; then
        out=$(PYENV_VERSION="$version" "$candidate" -c 'import sys; print(sys.executable) if sys.version_info >= (3, 12) else sys.exit(1)' 2>/dev/null) || continue
      else
        out=$("$candidate" -c 'import sys; print(sys.executable) if sys.version_info >= (3, 12) else sys.exit(1)' 2>/dev/null) || continue
      fi
      echo "$out"
      return 0
    done
  done
  echo "error: django-generic-tasks needs Python >= 3.12; none found (tried \$PYTHON, python3.13, python3.12, python3, and pyenv versions)." >&2
  echo "Install Python 3.12 or newer, or set PYTHON=/path/to/python3.12." >&2
  return 1
}

# ensure_venv DIR EXTRAS [EXTRA PIP ARGS...]: creates DIR with a Python >= 3.12 and installs the project.
ensure_venv() {
  local dir=$1 extras=$2; shift 2
  local python
  if [ ! -x "$dir/bin/python" ]; then
    python=$(find_python) || exit 1
    echo "==> creating $dir with $python"
    "$python" -m venv "$dir"
    "$dir/bin/python" -m pip install --quiet --upgrade pip
  fi
  echo "==> installing django-generic-tasks[$extras] into $dir"
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[$extras]" "$@"
}
