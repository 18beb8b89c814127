#!/usr/bin/env bash
# Create kerascut's two work pools on the Prefect server at PREFECT_API_URL (idempotent).
#
#   bash deployments/setup_work_pools.sh [process|docker|kubernetes] [GPU_COUNT]
#
#   kerascut-cpu  runs refresh-backbones (fingerprints, fetch, cut, publish)
#   kerascut-gpu  runs validate-backbone; for docker and kubernetes its base job template asks
#                 for GPUs (NVIDIA_VISIBLE_DEVICES / nvidia.com/gpu limits)
#
# Then start one worker per pool:
#   prefect worker start --pool kerascut-cpu
#   prefect worker start --pool kerascut-gpu        # on the GPU machine
# Docker and Kubernetes pools need the prefect-docker / prefect-kubernetes packages where the
# worker (and this script) runs.
set -euo pipefail
TYPE="${1:-process}"
GPUS="${2:-1}"
PREFECT="${PREFECT:-prefect}"
case "$TYPE" in
  process|docker|kubernetes) ;;
  *) echo "setup_work_pools: expected process, docker or kubernetes; received '$TYPE'" >&2; exit 2 ;;
esac
: "${PREFECT_API_URL:?set PREFECT_API_URL to your Prefect server, e.g. http://prefect.internal:4200/api}"

"$PREFECT" work-pool create kerascut-cpu --type "$TYPE" --overwrite

if [ "$TYPE" = "process" ]; then
  "$PREFECT" work-pool create kerascut-gpu --type process --overwrite
else
  # Start from the worker type's default template and add the GPU request.
  template="$(mktemp)"
  trap 'rm -f "$template"' EXIT
  "$PREFECT" work-pool get-default-base-job-template --type "$TYPE" > "$template"
  python3 - "$template" "$TYPE" "$GPUS" <<'PY'
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
"$PREFECT" work-pool ls
