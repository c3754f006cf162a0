"""Managed sidecars for the bench, with BENCH_CLUSTER=1: a real API server (KUBECONFIG's, or
one started with scripts/k8s/start.sh), the real operator, and two sidecars in managed
mode on the bench's upstream: one whose namespace has no limit, and one under a shared
(`scope: policy`) rate limit, a provider account limit and an AIBudget, all held through
the operator's leases. The limits are set so that the bench never reaches them but the
sidecar still asks the operator for a new slice every few seconds under load: what a busy
pod on a shared limit costs, lease exchanges and usage reports included."""

import json
import os
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SYSTEM = "switchyard-bench-system"
PLAIN, GOVERNED = "switchyard-bench-plain", "switchyard-bench-governed"


def kubectl(*args, stdin=None):
    r = subprocess.run(["kubectl", *args], input=stdin, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


_started = []


def cluster():
    """The kubeconfig to use, or None: only with BENCH_CLUSTER=1 (the bench creates objects
    there), KUBECONFIG's server, else one started here."""
    if os.environ.get("BENCH_CLUSTER") != "1":
        return None
    if os.environ.get("KUBECONFIG"):
        return os.environ["KUBECONFIG"]
    out = subprocess.run([str(ROOT / "scripts" / "k8s" / "start.sh")], capture_output=True, text=True, check=True).stdout
    exports = dict(line[len("export "):].split("=", 1) for line in out.splitlines() if line.startswith("export "))
    exports = {k: v.strip("'\"").replace("$PATH", os.environ.get("PATH", "")) for k, v in exports.items()}
    os.environ.update(exports)
    _started.append(exports["SWITCHYARD_K8S_STATE"])
    return exports["KUBECONFIG"]


def manifests(ns, upstream, governed):
    pricing = "pricing: {inputPerMillionTokens: 2.5, outputPerMillionTokens: 10}" if governed else ""
    limits = ", limits: {requestsPerMinute: 6000000}" if governed else ""
    docs = [
        f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}",
        f"apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: app, namespace: {ns}}}",
        f"apiVersion: v1\nkind: Secret\nmetadata: {{name: keys, namespace: {ns}}}\nstringData: {{key: sk-bench}}",
        f"apiVersion: v1\nkind: Pod\nmetadata: {{name: bench, namespace: {ns}, labels: {{app: bench}}}}\n"
        f"spec: {{serviceAccountName: app, containers: [{{name: app, image: bench}}]}}",
        f"apiVersion: switchyard.dev/v1alpha1\nkind: AIProvider\nmetadata: {{name: upstream, namespace: {ns}}}\n"
        f"spec: {{type: openai, baseUrl: \"http://127.0.0.1:{upstream}/v1\", credentials: {{secretRef: {{name: keys, key: key}}}}{limits}}}",
        f"apiVersion: switchyard.dev/v1alpha1\nkind: AIModel\nmetadata: {{name: bench, namespace: {ns}}}\n"
        f"spec: {{backends: [{{provider: upstream, model: gpt-4o, {pricing}}}]}}",
    ]
    if governed:
        docs += [
            # 3,000,000 a minute: a slice is 1/64 of it, so a pod at ~10,000 calls a second
            # asks the operator for more every few seconds.
            f"apiVersion: switchyard.dev/v1alpha1\nkind: AIRoutingPolicy\nmetadata: {{name: shared, namespace: {ns}}}\n"
            "spec: {rateLimit: {requestsPerMinute: 3000000, tokensPerMinute: 3000000000, scope: policy}}",
            f"apiVersion: switchyard.dev/v1alpha1\nkind: AIBudget\nmetadata: {{name: team, namespace: {ns}}}\n"
            "spec: {limit: \"100000\", period: month}",
        ]
    return "\n---\n".join(docs) + "\n"


def wait(what, check, timeout=60.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if check():
                return
        except (RuntimeError, OSError, ValueError, KeyError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"bench: {what} did not happen within {timeout:.0f} s")


def start(work, upstream, spawn, free_port, wait_port):
    """Starts the operator and the two managed sidecars; returns {name: (port, pid)}, or None
    without a cluster."""
    if not cluster():
        return None
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds" / "manifests"))
    for crd in ("aiproviders", "aimodels", "airoutingpolicies", "aibudgets"):
        kubectl("wait", "--for=condition=Established", "--timeout=60s", f"crd/{crd}.switchyard.dev")
    kubectl("apply", "-f", "-", stdin=f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {SYSTEM}}}\n")
    # A new install: an earlier run's leader may have granted this minute, and a leader that
    # takes over keeps such a window closed.
    kubectl("delete", "lease", "switchyard-operator-leader", "-n", SYSTEM, "--ignore-not-found")
    for ns, governed in ((PLAIN, False), (GOVERNED, True)):
        kubectl("apply", "-f", "-", stdin=manifests(ns, upstream, governed))
    config, admin, webhook = free_port(), free_port(), free_port()
    spawn([str(ROOT / "target" / "release" / "switchyard-operator"), "--namespace", SYSTEM,
           "--config-listen", f"127.0.0.1:{config}", "--admin-listen", f"127.0.0.1:{admin}",
           "--webhook-listen", f"127.0.0.1:{webhook}", "--identity", "bench"],
          env={**os.environ, "RUST_LOG": "warn"})
    wait_port(admin, timeout=30)
    ca = work / "ca.crt"
    wait("the operator's CA", lambda: ca.write_text(json.loads(
        kubectl("get", "configmap", "switchyard-ca", "-n", SYSTEM, "-o", "json"))["data"]["ca.crt"]) > 0)
    out = {}
    for ns in (PLAIN, GOVERNED):
        # A token bound to the pod, as the projected volume holds (kubectl's own `create token`
        # is newer than some servers' kubectl).
        uid = kubectl("get", "pod", "bench", "-n", ns, "-o", "jsonpath={.metadata.uid}")
        request = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {
            "audiences": ["switchyard"], "expirationSeconds": 3600,
            "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "bench", "uid": uid}}})
        token = json.loads(kubectl("create", "--raw", f"/api/v1/namespaces/{ns}/serviceaccounts/app/token",
                                   "-f", "-", stdin=request))["status"]["token"]
        token_file = work / f"{ns}.token"
        token_file.write_text(token)
        port, admin = free_port(), free_port()
        p = spawn([str(ROOT / "target" / "release" / "switchyard-sidecar")], env={
            **os.environ, "RUST_LOG": "warn", "SWITCHYARD_OPERATOR_URL": f"https://127.0.0.1:{config}",
            "SWITCHYARD_TOKEN_FILE": str(token_file), "SWITCHYARD_CA_FILE": str(ca),
            "SWITCHYARD_STATE_DIR": str(work / f"{ns}-state"),
            "SWITCHYARD_LISTEN": f"127.0.0.1:{port}", "SWITCHYARD_ADMIN_LISTEN": f"127.0.0.1:{admin}"})
        wait_port(port, timeout=30)
        models = lambda: "\"bench\"" in subprocess.run(
            ["curl", "-s", f"http://127.0.0.1:{port}/v1/models"], capture_output=True, text=True).stdout
        wait(f"the sidecar of {ns} serving its model", models)
        out[ns] = (port, p.pid)
    return out


def stop():
    """Stops the server `start` started, if it started one."""
    for state in _started:
        subprocess.run([str(ROOT / "scripts" / "k8s" / "stop.sh"), state], capture_output=True)
