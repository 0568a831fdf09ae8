#!/usr/bin/env bash
# The main job: build the toolchain if needed, bring a local cluster up, install the probe
# workload, show its status, and take the cluster down again unless --keep is given.
#   ./run.sh [--keep] [--name NAME] [--provider local|kind|existing] [--kubeconfig PATH]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$root"
python="${PYTHON:-python3}"

keep=0
name=meshcharts-demo
provider=local
kubeconfig_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --keep) keep=1 ;;
    --name) name="$2"; shift ;;
    --provider) provider="$2"; shift ;;
    --kubeconfig) kubeconfig_args=(--kubeconfig "$2"); shift ;;
    -h|--help) sed -n '2,4p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

bash .ci/setup
mc() { "$python" -m meshcharts.cli "$@"; }

KUBECONFIG="$(mc cluster up --name "$name" --provider "$provider" "${kubeconfig_args[@]}")"
export KUBECONFIG
if [ "$keep" = 0 ]; then
  trap 'mc cluster down --name "$name" --provider "$provider"' EXIT
fi
kubectl="$(mc tools path kubectl)"

"$kubectl" apply -f ci/probe/workload.yaml
"$kubectl" --namespace meshcharts-probe rollout status deployment/probe --timeout=120s
"$kubectl" version
"$kubectl" get nodes
"$kubectl" --namespace meshcharts-probe get deployments,pods,services --output wide
if [ "$keep" = 1 ]; then
  echo "cluster $name kept; use it with: export KUBECONFIG=$KUBECONFIG" >&2
  echo "take it down with: meshcharts cluster down --name $name" >&2
fi
