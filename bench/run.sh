#!/usr/bin/env bash
# Measures the sidecar against calling the same fast upstream directly and through a bare
# hyper proxy, in one run: latency p50/p99 and throughput at 1 and 16 connections, CPU per
# request, streaming time to first byte, RSS idle / under load / with 1,000 open streams,
# and time to ready. Needs wrk (Debian package `wrk`). Results: bench/out/results.md.
#
#   bench/run.sh            # ROUNDS=3 DURATION=5 by default; medians are reported
#   BENCH_CLUSTER=1 bench/run.sh   # also managed sidecars with leases (starts an API server)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "wrk is required: apt-get install -y wrk" >&2; exit 1; }
cargo build --release --quiet -p switchyard-sidecar -p switchyard-bench
# With BENCH_CLUSTER=1, managed mode is measured too, on a real API server (KUBECONFIG's, or
# one scripts/k8s/start.sh starts) and the real operator.
if [[ ${BENCH_CLUSTER:-} == 1 ]]; then
  cargo build --release --quiet -p switchyard-operator
fi
ulimit -n 8192 2>/dev/null || true
exec python3 bench/run.py "$@"
