#!/usr/bin/env bash
# Set up kerascut for development or a local run: a virtual environment in .venv/ at the
# repository root, with kerascut installed (editable) against the pinned constraints.
# Idempotent: a second run only checks. Usage: bash scripts/setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"

# graphviz's `dot` draws `kerascut inspect --svg` and the published graph.svg.
if ! command -v dot >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing graphviz (dot) with apt-get" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz >/dev/null) \
      || echo "setup: warning: could not install graphviz; SVG drawing will be unavailable" >&2
  else
    echo "setup: warning: graphviz 'dot' not found; install it (apt-get install graphviz) for SVG drawing" >&2
  fi
fi

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.kerascut-setup
want="$(cat pyproject.toml setup.py constraints.txt | sha256sum | cut -c1-16)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -c constraints.txt -e ".[dev]"
  echo "$want" > "$stamp"
fi
echo "setup: ready ($(.venv/bin/python -c 'import sys; print(sys.version.split()[0])'), .venv/)" >&2
