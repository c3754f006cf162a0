#!/usr/bin/env bash
# scripts/k8s/stop.sh [--keep] [STATE_DIR]: stops what scripts/k8s/start.sh started (by its
# recorded PIDs, and only processes whose command line names STATE_DIR, so a recycled PID
# is never signalled) and removes STATE_DIR unless --keep.
set -euo pipefail
keep=false
[[ ${1:-} == --keep ]] && { keep=true; shift; }
state=${1:-${SWITCHYARD_K8S_STATE:-}}
[[ -n $state ]] || { echo "usage: $0 [--keep] STATE_DIR" >&2; exit 2; }
[[ -d $state ]] || exit 0

ours() { [[ -r /proc/$1/cmdline ]] && tr '\0' ' ' <"/proc/$1/cmdline" | grep -qF -- "$state"; }
halt() {
  local file=$state/$1.pid pid
  [[ -f $file ]] || return 0
  pid=$(<"$file")
  if ours "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do ours "$pid" || break; sleep 0.1; done
    ours "$pid" && kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$file"
}
halt kube-apiserver
halt etcd
$keep || rm -rf "$state"
