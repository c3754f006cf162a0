"""From the Helm chart to a first request, against the real API server in KUBECONFIG.

The chart is rendered by Helm's own engine (helm-python-sdk) and applied with
`kubectl apply --server-side`; its CRDs are created as `helm install` creates them. The
operator binary runs as the chart's ServiceAccount (a token minted for it, so with the
chart's RBAC and nothing more) and with the chart's own arguments, its webhook registered
on a loopback URL (`webhook.url`). A Pod created through the API server comes back mutated
by the real admission chain; the sidecar then runs with exactly the environment the mutated
spec gives it and a token minted for that pod, and the official OpenAI SDK, configured
only by the app container's injected OPENAI_BASE_URL, gets an answer from a `mock` provider
declared in the pod's namespace.

The API server has no kubelet: ports and paths that only exist inside a pod (the token
mount, the state emptyDir, the Service name, port 4000) are mapped to this machine's.
"""

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import helm_python as helm
import openai
import pytest
import yaml

from conftest import ROOT, bin_dir, free_port, free_ports, wait_ready

pytestmark = pytest.mark.skipif(
    not os.environ.get("KUBECONFIG") or not shutil.which("kubectl"),
    reason="needs KUBECONFIG and kubectl (scripts/test starts a local API server)",
)

RELEASE_NS = "switchyard-system"
APP_NS = "sy-install-app"
CHART = ROOT / "charts" / "switchyard"


def kubectl(*args: str, stdin: str | None = None) -> str:
    out = subprocess.run(["kubectl", *args], input=stdin, capture_output=True, text=True)
    if out.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)}: {out.stderr}")
    return out.stdout


def token_for(namespace: str, service_account: str, audience: str | None = None, pod: dict | None = None) -> str:
    spec: dict = {"expirationSeconds": 3600}
    if audience:
        spec["audiences"] = [audience]
    if pod:
        spec["boundObjectRef"] = {"kind": "Pod", "apiVersion": "v1", "name": pod["metadata"]["name"], "uid": pod["metadata"]["uid"]}
    request = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(request, f)
        f.flush()
        out = kubectl("create", "--raw", f"/api/v1/namespaces/{namespace}/serviceaccounts/{service_account}/token", "-f", f.name)
    return json.loads(out)["status"]["token"]


def eventually(what: str, check, timeout: float = 20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for: {what}")


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The chart installed, its operator running; yields what the tests need."""
    work = tmp_path_factory.mktemp("install")
    webhook_port = free_port()
    # Rendered offline, as `helm template` for GitOps would: the server's version is a value.
    server = json.loads(kubectl("version", "-o", "json"))["serverVersion"]
    values: dict = {"webhook": {"url": f"https://127.0.0.1:{webhook_port}/inject"}}
    if int(server["major"]) == 1 and int(server["minor"].rstrip("+")) < 21:
        values["podDisruptionBudget"] = {"apiVersion": "policy/v1beta1"}
    chart = helm.Chart.load(CHART)
    rendered = chart.render(
        values,
        name="switchyard",
        namespace=RELEASE_NS,
        is_install=True,
    )
    docs = [d for text in rendered.values() for d in yaml.safe_load_all(text) if d]

    # What `helm install --create-namespace` does first: the namespace and the chart's CRDs
    # (created once, never upgraded by Helm; replaced here so that reruns stay current).
    kubectl("apply", "--server-side", "-f", "-", stdin=f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {RELEASE_NS}}}\n")
    for crd in sorted((CHART / "crds").glob("*.yaml")):
        name = yaml.safe_load(crd.read_text())["metadata"]["name"]
        verb = "replace" if subprocess.run(["kubectl", "get", "crd", name], capture_output=True).returncode == 0 else "create"
        kubectl(verb, "--validate=false", "-f", str(crd))
    eventually("CRDs served", lambda: subprocess.run(["kubectl", "get", "aimodels", "-A"], capture_output=True).returncode == 0)
    manifest = work / "rendered.yaml"
    manifest.write_text(yaml.safe_dump_all(docs))
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(manifest))

    # The operator, as the chart's Deployment runs it, with the chart's ServiceAccount.
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    config_port, admin_port = free_ports(2)
    loopback = {
        "--config-listen": f"127.0.0.1:{config_port}",
        "--webhook-listen": f"127.0.0.1:{webhook_port}",
        "--admin-listen": f"127.0.0.1:{admin_port}",
        "--sidecar-operator-url": f"https://127.0.0.1:{config_port}",
    }
    args = []
    for arg in container["args"]:
        flag = arg.split("=", 1)[0]
        args.append(f"{flag}={loopback[flag]}" if flag in loopback else arg)
    admin_config = yaml.safe_load(Path(os.environ["KUBECONFIG"]).read_text())
    cluster = next(c for c in admin_config["clusters"])["cluster"]
    kubeconfig = work / "operator.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "operator",
        "clusters": [{"name": "c", "cluster": cluster}],
        "users": [{"name": "operator", "user": {"token": token_for(RELEASE_NS, "switchyard-operator")}}],
        "contexts": [{"name": "operator", "context": {"cluster": "c", "user": "operator"}}],
    }))
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "SWITCHYARD_NAMESPACE": RELEASE_NS, "POD_NAME": "switchyard-operator-0", "RUST_LOG": "info,kube=warn"}
    bins = bin_dir()
    log = open(work / "operator.log", "w")
    operator = subprocess.Popen([str(bins / "switchyard-operator"), *args], env=env, stderr=log)
    try:
        wait_ready(f"http://127.0.0.1:{admin_port}/readyz", operator, timeout=60)
        yield {"work": work, "bins": bins, "config_port": config_port, "log": work / "operator.log"}
    finally:
        operator.terminate()
        operator.wait(timeout=10)
        log.close()


def test_the_chart_installs_and_an_injected_pod_talks_to_its_sidecar_through_the_openai_sdk(installed):
    work, bins = installed["work"], installed["bins"]
    # The operator set the caBundle of the chart's webhook configuration.
    def injector_client_config():
        mwc = json.loads(kubectl("get", "mutatingwebhookconfiguration", "switchyard-sidecar-injector", "-o", "json"))
        return mwc["webhooks"][0]["clientConfig"]

    client_config = eventually("caBundle set", lambda: (c := injector_client_config()).get("caBundle") and c)
    assert client_config["url"].startswith("https://127.0.0.1:")

    # A platform team labels a namespace and declares a provider and a model there.
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", stdin=f"""
apiVersion: v1
kind: Namespace
metadata: {{name: {APP_NS}, labels: {{switchyard.dev/inject: enabled}}}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: default, namespace: {APP_NS}}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {{name: mock, namespace: {APP_NS}}}
spec: {{type: mock}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIModel
metadata: {{name: chat, namespace: {APP_NS}}}
spec: {{backends: [{{provider: mock, model: mock-1}}]}}
""")
    eventually("the model is Ready", lambda: "True" in kubectl("get", "aimodel", "chat", "-n", APP_NS, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}"))

    # A pod created through the API server comes back with the sidecar.
    subprocess.run(["kubectl", "delete", "pod", "app", "-n", APP_NS, "--grace-period=0", "--ignore-not-found"], capture_output=True)
    eventually("old pod gone", lambda: subprocess.run(["kubectl", "get", "pod", "app", "-n", APP_NS], capture_output=True).returncode != 0)
    pod = json.loads(kubectl("create", "-o", "json", "-f", "-", stdin=json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app", "namespace": APP_NS},
        "spec": {"containers": [{"name": "app", "image": "registry.local/app:1"}]},
    })))
    containers = pod["spec"]["containers"]
    sidecar, app = containers[0], containers[1]
    assert sidecar["name"] == "switchyard-sidecar", "before 1.29 the sidecar is the first container"
    assert sidecar["lifecycle"]["postStart"]["exec"]["command"][1] == "wait-ready"
    assert sidecar["image"] == "ghcr.io/switchyard-dev/switchyard-sidecar:0.1.0", "the chart's sidecar image"
    assert sidecar["resources"]["requests"] == {"cpu": "10m", "memory": "16Mi"}, "the chart's sidecar resources"
    app_env = {e["name"]: e["value"] for e in app["env"]}
    assert app_env == {"OPENAI_BASE_URL": "http://127.0.0.1:4000/v1", "ANTHROPIC_BASE_URL": "http://127.0.0.1:4000"}
    token_volume = next(v for v in pod["spec"]["volumes"] if v["name"] == "switchyard-token")
    assert token_volume["projected"]["sources"][0]["serviceAccountToken"]["audience"] == "switchyard"

    # The sidecar runs with the mutated spec's environment; what a kubelet would provide
    # (the mounted token, the emptyDir, port 4000 on the pod's loopback, the Service) is
    # mapped to this machine.
    token_file = work / "token"
    token_file.write_text(token_for(APP_NS, pod["spec"]["serviceAccountName"], "switchyard", pod))
    listen, admin = free_ports(2)
    local = {
        "SWITCHYARD_TOKEN_FILE": str(token_file),
        "SWITCHYARD_STATE_DIR": str(work / "state"),
        "SWITCHYARD_LISTEN": f"127.0.0.1:{listen}",
        "SWITCHYARD_ADMIN_LISTEN": f"127.0.0.1:{admin}",
        "SWITCHYARD_OPERATOR_URL": f"https://127.0.0.1:{installed['config_port']}",
    }
    env = {"PATH": os.environ.get("PATH", "")}
    for e in sidecar["env"]:
        env[e["name"]] = local.get(e["name"], e.get("value", ""))
    assert "SWITCHYARD_CA_PEM" in env and "BEGIN CERTIFICATE" in env["SWITCHYARD_CA_PEM"]
    log = open(work / "sidecar.log", "w")
    proc = subprocess.Popen([str(bins / "switchyard-sidecar")], env=env, stderr=log)
    try:
        hook = subprocess.run([str(bins / "switchyard-sidecar"), "wait-ready"], env=env, timeout=60)
        assert hook.returncode == 0, "the start-up hook returns once the sidecar is ready"
        base_url = app_env["OPENAI_BASE_URL"].replace("127.0.0.1:4000", f"127.0.0.1:{listen}")
        client = openai.OpenAI(base_url=base_url, api_key="unused")
        answer = eventually("an answer through the injected OPENAI_BASE_URL", lambda: _ask(client))
        assert "hello from the app" in answer
        with client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "stream please"}], stream=True) as stream:
            text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert "stream please" in text
        assert [m.id for m in client.models.list()] == ["chat"]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
        subprocess.run(["kubectl", "delete", "pod", "app", "-n", APP_NS, "--grace-period=0"], capture_output=True)


def _ask(client: openai.OpenAI) -> str | None:
    try:
        r = client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hello from the app"}])
    except openai.APIError:
        return None
    return r.choices[0].message.content
