#!/usr/bin/env bash
# Set up kerascut for development or a local run: a virtual environment in .venv/ at the
# repository root, with kerascut installed (editable) against the pinned constraints.
# Idempotent: a second run only checks. Usage: bash scripts/setup.sh [--extras]
#   --extras  also install the optional extras onnx, litert, jax and hub (constraints-extras.txt),
#             keeping one TensorFlow distribution in the environment (see below).
set -euo pipefail
extras=0
for arg in "$@"; do
  case "$arg" in
    --extras) extras=1 ;;
    *) echo "setup: unknown option '$arg'; expected --extras" >&2; exit 2 ;;
  esac
done
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
if [ "$extras" = 1 ]; then
  stamp_x=.venv/.kerascut-setup-extras
  want_x="$want-$(sha256sum < constraints-extras.txt | cut -c1-16)"
  if [ "$(cat "$stamp_x" 2>/dev/null)" != "$want_x" ]; then
    pip_x=(.venv/bin/python -m pip install -q -c constraints.txt -c constraints-extras.txt)
    "${pip_x[@]}" -e ".[onnx,litert,jax]"
    # keras-hub requires tensorflow-text, which requires the full `tensorflow` distribution:
    # next to `tensorflow-cpu` that would be a second TensorFlow in one package folder. Both are
    # installed without their requirements, then keras-hub's other requirements by name.
    if .venv/bin/python -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
      "${pip_x[@]}" --no-deps keras-hub tensorflow-text
      "${pip_x[@]}" absl-py packaging regex rich kagglehub kagglesdk sentencepiece tokenizers
    else
      echo "setup: warning: keras-hub needs Python >= 3.11; skipping the 'hub' extra" >&2
    fi
    n_tf="$(.venv/bin/python -m pip list 2>/dev/null | grep -ciE '^(tensorflow|tensorflow-cpu|tensorflow_cpu|tf-nightly|tensorflow-intel) ' || true)"
    if [ "$n_tf" != 1 ]; then
      echo "setup: error: expected one TensorFlow distribution after the extras, found $n_tf" >&2
      exit 1
    fi
    echo "$want_x" > "$stamp_x"
  fi
fi
echo "setup: ready ($(.venv/bin/python -c 'import sys; print(sys.version.split()[0])'), .venv/)" >&2
