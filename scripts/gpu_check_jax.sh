#!/usr/bin/env bash
# The JAX-backend GPU check (issue 15): cut and validate one zoo model on a GPU under
# KERAS_BACKEND=jax with require_gpu, on a machine that has JAX with CUDA but no TensorFlow and
# no internet. keras and kerascut's pure-Python dependencies travel as wheels in .gpu-wheels/.
#
#   bash scripts/gpu_check_jax.sh --download   # here, with internet: fill .gpu-wheels/ (gitignored)
#   bash scripts/gpu_check_jax.sh              # on the GPU machine: install from it, then check
#   bash scripts/gpu_check_jax.sh --dry-run    # the same on a CPU: no install, small model, no GPU needed
#
# The check installs into a virtual environment that sees the machine's own packages
# (--system-site-packages: its jax, jaxlib and CUDA plugin are used as they are) and only adds
# what is missing, from the wheels, never from an index. Extra arguments go to
# scripts/gpu_check_jax.py (e.g. --model MobileNetV2 --samples 128). It finishes in a few
# minutes and prints the device, the verdict and throughput against model.predict; the JSON
# lands in $OUT (or the current directory).
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=${KERASCUT_GPU_WHEELS:-.gpu-wheels}
PYTHON=${PYTHON:-python3}
# What kerascut_core's cut and validate paths import besides jax, numpy and ml-dtypes (which a
# JAX machine has), pinned as constraints.txt pins them.
REQUIREMENTS=(
    "keras==3.15.1" "absl-py==2.5.1" "namex==0.1.0" "optree==0.20.0" "h5py==3.14.0" "ml-dtypes"
    "packaging==26.3" "rich==15.0.0" "markdown-it-py==4.3.0" "mdurl==0.1.2" "pygments==2.21.0"
    "pydantic==2.14.3" "pydantic-core==2.50.4" "annotated-types==0.8.0" "typing-extensions"
    "typing-inspection==0.4.5" "pyyaml==6.0.3"
)

case "${1:-}" in
--download)
    # Binary wheels for every Python that keras 3.15 supports, so whatever the GPU machine runs fits.
    mkdir -p "$WHEELS"
    for py in 3.11 3.12 3.13; do
        "$PYTHON" -m pip download --quiet --only-binary=:all: --platform manylinux2014_x86_64 \
            --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
            --python-version "$py" --no-deps -d "$WHEELS" "${REQUIREMENTS[@]}"
    done
    printf '%s\n' "${REQUIREMENTS[@]}" > "$WHEELS/requirements.txt"
    du -sh "$WHEELS"
    exit 0
    ;;
--dry-run)
    shift
    # CPU: the same script, TensorFlow blocked, no install, a small input and no GPU required.
    KERAS_BACKEND=jax JAX_PLATFORMS=cpu exec "${DRY_PYTHON:-.venv/bin/python}" scripts/gpu_check_jax.py \
        --cpu-ok --model MobileNetV2 --size 96 --samples 8 --batch-size 4 "$@"
    ;;
esac

if [ ! -f "$WHEELS/requirements.txt" ]; then
    echo "error: no wheels in $WHEELS/; run 'bash scripts/gpu_check_jax.sh --download' where there is internet" >&2
    exit 2
fi
VENV=${KERASCUT_GPU_VENV:-/tmp/kerascut-gpu-venv}
"$PYTHON" -m venv --system-site-packages "$VENV"
"$VENV/bin/python" -c "import jax; print('jax', jax.__version__, jax.devices())"
"$VENV/bin/python" -m pip install --quiet --no-index --find-links "$WHEELS" -r "$WHEELS/requirements.txt"
export KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false
# bitwise-repeatable GPU kernels: validation checks that two runs on one batch agree
export XLA_FLAGS="${XLA_FLAGS:-} --xla_gpu_deterministic_ops=true"
timeout 540 "$VENV/bin/python" scripts/gpu_check_jax.py "$@"
