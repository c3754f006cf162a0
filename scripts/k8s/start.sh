#!/usr/bin/env bash
# scripts/k8s/start.sh: starts a throwaway control plane (etcd + kube-apiserver, nothing
# else: no scheduler, no controller-manager, no kubelet) on free loopback ports and prints
# `export` lines for KUBECONFIG, SWITCHYARD_K8S_STATE and PATH (kubectl) on stdout:
#
#   eval "$(scripts/k8s/start.sh)"; ...; scripts/k8s/stop.sh "$SWITCHYARD_K8S_STATE"
#
# The binaries come from scripts/k8s/install.sh, run first when they are missing. The
# caller is cluster-admin by client certificate; TokenRequest/TokenReview and admission
# webhooks work; the ServiceAccount admission plugin is off (there is no controller to make
# default ServiceAccounts), so pods are created without one and stay Pending.
#
# Environment: SWITCHYARD_K8S_CACHE (as install.sh), SWITCHYARD_APISERVER_ARGS (extra flags),
# SWITCHYARD_K8S_READY_TIMEOUT (seconds, default 120). $1: the state directory (default: new).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${SWITCHYARD_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/switchyard-k8s}
bin=$cache/bin
timeout=${SWITCHYARD_K8S_READY_TIMEOUT:-120}

say() { echo "k8s/start: $*" >&2; }
fail() { say "error: $*"; exit 1; }

[[ -x $bin/kube-apiserver && -x $bin/etcd ]] || "$here/install.sh" >&2
command -v openssl >/dev/null || fail "openssl is needed"
command -v curl >/dev/null || fail "curl is needed"

state=${1:-$(mktemp -d "${TMPDIR:-/tmp}/switchyard-k8s.XXXXXX")}
mkdir -p "$state/pki"
state=$(cd "$state" && pwd)
[[ -e $state/kube-apiserver.pid ]] && fail "$state already has a server; stop it first"
pki=$state/pki

pids=()
done_ok=false
cleanup() {
  $done_ok && return
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -f "$state"/*.pid
  say "failed; logs in $state"
}
trap cleanup EXIT

# A port is free when nothing accepts on it; the starts retry on a lost race.
used=" "
pick_port() {
  local port
  for _ in $(seq 200); do
    port=$((20000 + RANDOM % 40000))
    [[ $used == *" $port "* ]] && continue
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && continue
    used+="$port "
    echo "$port"
    return 0
  done
  fail "no free port"
}

# cert NAME SUBJECT EXTENSIONS: a key and a certificate signed by the run's CA.
cert() {
  openssl req -newkey rsa:2048 -nodes -keyout "$pki/$1.key" -out "$pki/$1.csr" -subj "$2" 2>/dev/null
  printf '%b' "$3" >"$pki/$1.ext"
  openssl x509 -req -in "$pki/$1.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "$pki/$1.ext" -out "$pki/$1.crt" 2>/dev/null
}
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -sha256 -subj /CN=switchyard-test-ca \
  -keyout "$pki/ca.key" -out "$pki/ca.crt" 2>/dev/null
cert server /CN=kube-apiserver "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\n"
cert admin "/O=system:masters/CN=switchyard-test-admin" "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n"
openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
chmod 600 "$pki"/*.key

# run NAME ARGV...: in the background, own session, log and pid file in the state dir.
run() {
  local name=$1
  shift
  setsid "$@" </dev/null >"$state/$name.log" 2>&1 &
  pids+=("$!")
  echo "$!" >"$state/$name.pid"
}
running() { kill -0 "$(<"$state/$1.pid")" 2>/dev/null; }
# await NAME SECONDS CHECK...: 0 when CHECK passes, 1 when NAME died, 2 on time-out.
await() {
  local name=$1 deadline=$((SECONDS + $2))
  shift 2
  until "$@" >/dev/null 2>&1; do
    running "$name" || return 1
    ((SECONDS < deadline)) || return 2
    sleep 0.2
  done
}

for try in 1 2 3; do
  etcd_port=$(pick_port)
  peer_port=$(pick_port)
  rm -rf "$state/etcd"
  run etcd "$bin/etcd" --name default --data-dir "$state/etcd" --logger zap --log-level warn \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "default=http://127.0.0.1:$peer_port"
  await etcd 30 curl -fsS "http://127.0.0.1:$etcd_port/health" && break
  kill "$(<"$state/etcd.pid")" 2>/dev/null || true
  ((try < 3)) || fail "etcd did not start (see $state/etcd.log)"
done

# shellcheck disable=SC2206 # the extra flags are split on purpose
extra=(${SWITCHYARD_APISERVER_ARGS:-})
ready() {
  [[ $(curl -fsS --cacert "$pki/ca.crt" --cert "$pki/admin.crt" --key "$pki/admin.key" \
    "https://127.0.0.1:$api_port/readyz") == ok ]]
}
for try in 1 2 3; do
  api_port=$(pick_port)
  run kube-apiserver "$bin/kube-apiserver" --etcd-servers="http://127.0.0.1:$etcd_port" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="$api_port" --insecure-port=0 \
    --tls-cert-file="$pki/server.crt" --tls-private-key-file="$pki/server.key" --client-ca-file="$pki/ca.crt" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$pki/sa.pub" --service-account-signing-key-file="$pki/sa.key" \
    --service-cluster-ip-range=10.0.0.0/24 --authorization-mode=Node,RBAC \
    --enable-admission-plugins=NamespaceLifecycle,LimitRanger,ResourceQuota,MutatingAdmissionWebhook,ValidatingAdmissionWebhook \
    --disable-admission-plugins=ServiceAccount --endpoint-reconciler-type=none \
    --allow-privileged=true --profiling=false "${extra[@]}"
  rc=0
  await kube-apiserver "$timeout" ready || rc=$?
  ((rc == 0)) && break
  ((rc == 2)) && fail "kube-apiserver not ready in ${timeout}s (see $state/kube-apiserver.log)"
  ((try < 3)) || fail "kube-apiserver did not start (see $state/kube-apiserver.log)"
done

cat >"$state/kubeconfig" <<CONF
apiVersion: v1
kind: Config
clusters:
- name: switchyard-test
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority-data: $(base64 -w0 <"$pki/ca.crt")
users:
- name: admin
  user:
    client-certificate-data: $(base64 -w0 <"$pki/admin.crt")
    client-key-data: $(base64 -w0 <"$pki/admin.key")
contexts:
- name: switchyard-test
  context: {cluster: switchyard-test, user: admin, namespace: default}
current-context: switchyard-test
CONF
chmod 600 "$state/kubeconfig"
done_ok=true
say "kube-apiserver ready at https://127.0.0.1:$api_port (state $state)"
echo "export KUBECONFIG=$state/kubeconfig"
echo "export SWITCHYARD_K8S_STATE=$state"
echo "export PATH=$bin:\$PATH"
