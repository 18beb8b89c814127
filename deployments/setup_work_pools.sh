#!/usr/bin/env bash
# Create kerascut's two work pools and its prepare concurrency limit on the Prefect server at
# PREFECT_API_URL (idempotent).
#
#   bash deployments/setup_work_pools.sh [--dry-run] [process|docker|kubernetes] [GPU_COUNT]
#   PREPARE_SLOTS=4 bash deployments/setup_work_pools.sh     # 4 prepares at once over all refreshes
#
# `prefect` is the project's own (.venv/bin/prefect, what scripts/setup.sh installs, found from
# the repository root whatever the working directory), else the one on PATH; PREFECT=/path/to/prefect
# names another. --dry-run prints the commands instead of running them (no server needed).
#
#   kerascut-cpu  runs refresh-backbones (fingerprints, fetch, cut, publish)
#   kerascut-gpu  runs validate-backbone; for docker and kubernetes its base job template asks
#                 for GPUs (NVIDIA_VISIBLE_DEVICES / nvidia.com/gpu limits)
#   kerascut-prepare-backbone-cpu  the global concurrency limit every refresh with
#                 prepare: {deployment: prepare-backbone/cpu} takes one slot of per prepare run in
#                 flight (PREPARE_SLOTS, default 2: about one per CPU worker), so overlapping
#                 refreshes never oversubscribe the pool; without it only `concurrency` bounds each
#
# Then start one worker per pool:
#   prefect worker start --pool kerascut-cpu
#   prefect worker start --pool kerascut-gpu        # on the GPU machine
# Docker and Kubernetes pools need the prefect-docker / prefect-kubernetes packages where the
# worker (and this script) runs.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DRY_RUN=0
ARGS=()
for arg in "$@"; do
  case "$arg" in
    --dry-run) DRY_RUN=1 ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}"; exit 0 ;;
    *) ARGS+=("$arg") ;;
  esac
done
TYPE="${ARGS[0]:-process}"
GPUS="${ARGS[1]:-1}"
PREPARE_SLOTS="${PREPARE_SLOTS:-2}"
PREPARE_LIMIT=kerascut-prepare-backbone-cpu   # kerascut_core.pipeline_names.prepare_limit_name
case "$PREPARE_SLOTS" in
  ''|*[!0-9]*|0) echo "setup_work_pools: expected PREPARE_SLOTS to be a whole number above 0; received '$PREPARE_SLOTS'" >&2; exit 2 ;;
esac
case "$TYPE" in
  process|docker|kubernetes) ;;
  *) echo "setup_work_pools: expected process, docker or kubernetes; received '$TYPE'" >&2; exit 2 ;;
esac

# The project's environment first (scripts/setup.sh installs into .venv/ without activating it).
if [ -n "${PREFECT:-}" ]; then
  :
elif [ -x "$ROOT/.venv/bin/prefect" ]; then
  PREFECT="$ROOT/.venv/bin/prefect"
elif command -v prefect >/dev/null 2>&1; then
  PREFECT="$(command -v prefect)"
else
  echo "setup_work_pools: prefect not found in $ROOT/.venv/bin or on PATH; run 'bash scripts/setup.sh' (or set PREFECT=/path/to/prefect)" >&2
  exit 127
fi
PYTHON="$(dirname "$PREFECT")/python"
[ -x "$PYTHON" ] || PYTHON=python3

run() {  # the command, or with --dry-run its shell-quoted line
  if [ "$DRY_RUN" = 1 ]; then printf '%q ' "$@" | sed 's/ $//'; echo; else "$@"; fi
}

if [ "$DRY_RUN" = 1 ]; then
  echo "# setup_work_pools --dry-run: prefect is $PREFECT; server ${PREFECT_API_URL:-(PREFECT_API_URL not set)}"
else
  : "${PREFECT_API_URL:?set PREFECT_API_URL to your Prefect server, e.g. http://prefect.internal:4200/api}"
fi

run "$PREFECT" work-pool create kerascut-cpu --type "$TYPE" --overwrite

if [ "$TYPE" = "process" ]; then
  run "$PREFECT" work-pool create kerascut-gpu --type process --overwrite
elif [ "$DRY_RUN" = 1 ]; then
  run "$PREFECT" work-pool get-default-base-job-template --type "$TYPE" --file TEMPLATE.json
  echo "# (adds the GPU request to TEMPLATE.json: $GPUS GPU(s), NVIDIA_VISIBLE_DEVICES=all)"
  run "$PREFECT" work-pool create kerascut-gpu --type "$TYPE" --base-job-template TEMPLATE.json --overwrite
else
  # Start from the worker type's default template and add the GPU request.
  template="$(mktemp)"
  trap 'rm -f "$template"' EXIT
  "$PREFECT" work-pool get-default-base-job-template --type "$TYPE" > "$template"
  "$PYTHON" - "$template" "$TYPE" "$GPUS" <<'PY'
import json, sys
path, kind, gpus = sys.argv[1], sys.argv[2], int(sys.argv[3])
template = json.load(open(path))
variables = template["variables"]["properties"]
env = variables.setdefault("env", {"type": "object", "title": "Environment Variables"})
env["default"] = {"NVIDIA_VISIBLE_DEVICES": "all",
                  "NVIDIA_DRIVER_CAPABILITIES": "compute,utility",
                  "TF_FORCE_GPU_ALLOW_GROWTH": "true"}
if kind == "kubernetes":
    container = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]["containers"][0]
    container["resources"] = {"limits": {"nvidia.com/gpu": gpus}, "requests": {"nvidia.com/gpu": gpus}}
    pod = template["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
    pod.setdefault("tolerations", []).append(
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"})
elif kind == "docker":
    # prefect-docker passes device requests through the container's `gpus`-equivalent setting
    # when the host runs the NVIDIA container toolkit with `default-runtime: nvidia`.
    pass
json.dump(template, open(path, "w"), indent=2)
PY
  "$PREFECT" work-pool create kerascut-gpu --type "$TYPE" --base-job-template "$template" --overwrite
fi
# create, or (it exists) set its slots: `prefect gcl create` refuses an existing name
run "$PREFECT" global-concurrency-limit create "$PREPARE_LIMIT" --limit "$PREPARE_SLOTS" 2>/dev/null \
  || run "$PREFECT" global-concurrency-limit update "$PREPARE_LIMIT" --limit "$PREPARE_SLOTS"
run "$PREFECT" work-pool ls
