#!/usr/bin/env bash
# Measures config propagation: from `kubectl apply` returning to every selected sidecar
# stream holding the new snapshot, over many changes, with STREAMS (default 1000) sidecar
# streams open on one operator, and the operator's memory. Uses the cluster in KUBECONFIG,
# or starts a local one with scripts/k8s/start.sh. Results: bench/out/propagation.md.
#
#   bench/propagation.sh            # STREAMS=1000 CHANGES=50
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet -p switchyard-operator
if [ -z "${KUBECONFIG:-}" ]; then
  eval "$(scripts/k8s/start.sh)"
  trap 'scripts/k8s/stop.sh "$SWITCHYARD_K8S_STATE" >/dev/null 2>&1 || true' EXIT
fi
ulimit -n 8192 2>/dev/null || true
python3 bench/propagation.py
