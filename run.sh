#!/usr/bin/env bash
# The main job, on a fresh machine too: build the toolchain if needed, check the committed release
# (re-packaging is a no-op, index and provenance verify with meshcharts.asc), serve it on loopback,
# helm repo add, install base, istiod and gateway from it into a local cluster at the newest version of
# the newest published line (a release candidate too), show what runs, and take the cluster down again
# unless --keep is given.
#   ./run.sh [--keep] [--name NAME] [--provider local|kind|existing] [--kubeconfig PATH]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$root"

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
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

start=$(date +%s)
bash .ci/setup --main-job
# .ci/setup installed meshcharts into this checkout's own environment (.venv), not the machine's interpreter.
python="$root/.venv/bin/python"
mc() { "$python" -m meshcharts.cli "$@"; }

KUBECONFIG="$(mc cluster up --name "$name" --provider "$provider" "${kubeconfig_args[@]}")"
export KUBECONFIG
if [ "$keep" = 0 ]; then
  trap 'mc cluster down --name "$name" --provider "$provider"' EXIT
fi

demo_args=()
# Pods really run only on kind or an existing cluster: there istiod's own pod answers its webhooks. On the
# local kwok cluster nothing runs in pods, so the chart's istiod Deployment runs on this host as a real istiod.
[ "$provider" != local ] || demo_args+=(--cluster "$name")
[ "$keep" = 0 ] || demo_args+=(--keep)
mc demo --kubeconfig "$KUBECONFIG" "${demo_args[@]}"

echo "run.sh: done in $(( $(date +%s) - start ))s" >&2
if [ "$keep" = 1 ]; then
  echo "cluster $name kept; use it with: export KUBECONFIG=$KUBECONFIG" >&2
  echo "take it down with: meshcharts cluster down --name $name" >&2
fi
