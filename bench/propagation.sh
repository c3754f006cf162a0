#!/usr/bin/env bash
# Measures config propagation: from `kubectl apply` returning to every selected sidecar
# stream holding the new snapshot, over many changes, with STREAMS (default 1000) sidecar
# streams open on one operator, and the operator's memory. Uses the cluster in KUBECONFIG,
# or starts the local control plane of ../shared/k8s. Results: bench/out/propagation.md.
#
#   bench/propagation.sh            # STREAMS=1000 CHANGES=50
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p switchyard-operator
if [ -z "${KUBECONFIG:-}" ]; then
  k8s="$(cd .. && pwd)/shared/k8s"
  eval "$(bash "$k8s/start-apiserver.sh")"
  trap 'bash "$k8s/stop-apiserver.sh" "$SWITCHYARD_K8S_STATE" >/dev/null 2>&1 || true' EXIT
fi
ulimit -n 8192 2>/dev/null || true
python3 bench/propagation.py
