# Sourced by scripts/*: makes .venv with Python 3.11 and installs the project when needed.
# Usage: source scripts/_bootstrap.sh [extras]     (sets ROOT and PY)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_extras="${1:-}"
if [ ! -x "$ROOT/.venv/bin/python" ]; then
    _py="${AISLE_PYTHON:-}"
    if [ -z "$_py" ]; then
        for c in python3.11 python3 python; do
            if command -v "$c" >/dev/null 2>&1 &&
               "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
                _py="$c"; break
            fi
        done
    fi
    if [ -z "$_py" ]; then
        echo "aisle needs Python 3.11 (set AISLE_PYTHON to its path)" >&2
        exit 1
    fi
    echo "creating .venv with $_py ..." >&2
    "$_py" -m venv "$ROOT/.venv"
fi
PY="$ROOT/.venv/bin/python"
_stamp="$ROOT/.venv/.installed-$(sha256sum "$ROOT/pyproject.toml" | cut -c1-12)${_extras:+-$_extras}"
if [ ! -f "$_stamp" ]; then
    echo "installing aisle${_extras:+[$_extras]} into .venv (first run takes a few minutes) ..." >&2
    "$PY" -m pip install -q --upgrade pip
    "$PY" -m pip install -q -e "$ROOT${_extras:+[$_extras]}"
    touch "$_stamp"
fi
export RAY_USAGE_STATS_ENABLED="${RAY_USAGE_STATS_ENABLED:-0}"
