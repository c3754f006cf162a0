"""The Helm chart, through Helm's own Go SDK (helm-python-sdk): lint, render with default
and non-default values, schema rejection, and agreement with the generated CRDs and the
operator's RBAC."""

from pathlib import Path

import helm_python as helm
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "switchyard"


def render_docs(values=None):
    chart = helm.Chart.load(CHART)
    out = chart.render(values, name="switchyard", namespace="switchyard-system", is_install=True)
    docs = []
    for text in out.values():
        docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


def render(values=None, kube_version=None):
    return {(d["kind"], d["metadata"]["name"]): d for d in render_docs(values)}


def test_the_chart_lints_without_errors_or_warnings():
    report = helm.lint(CHART, strict=False)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_default_values_render_the_operator_its_service_pdb_rbac_and_webhook():
    objs = render()
    deploy = objs[("Deployment", "switchyard-operator")]
    assert deploy["spec"]["replicas"] == 2
    pod = deploy["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "ghcr.io/switchyard-dev/switchyard-operator:0.1.0"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["resources"]["requests"]["memory"] == "64Mi"
    assert "--sidecar-image=ghcr.io/switchyard-dev/switchyard-sidecar:0.1.0" in container["args"]
    assert deploy["spec"]["template"]["metadata"]["labels"]["switchyard.dev/inject"] == "false"
    assert objs[("PodDisruptionBudget", "switchyard-operator")]["spec"]["minAvailable"] == 1
    service = objs[("Service", "switchyard-operator")]
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {"config": 8443, "webhook": 443, "admin": 8080}
    hooks = objs[("MutatingWebhookConfiguration", "switchyard-sidecar-injector")]["webhooks"]
    for hook in hooks:
        assert hook["failurePolicy"] == "Ignore"
        assert hook["clientConfig"]["service"] == {"name": "switchyard-operator", "namespace": "switchyard-system", "path": "/inject", "port": 443}
    # Only opted-in pods are ever sent: labelled namespaces (unless the pod says "false"),
    # or pods labelled "true" elsewhere.
    selectors = {h["name"]: (h["namespaceSelector"]["matchExpressions"][0], h["objectSelector"]["matchExpressions"][0]) for h in hooks}
    assert selectors == {
        "namespace.inject.switchyard.dev": (
            {"key": "switchyard.dev/inject", "operator": "In", "values": ["enabled"]},
            {"key": "switchyard.dev/inject", "operator": "NotIn", "values": ["false"]}),
        "pod.inject.switchyard.dev": (
            {"key": "switchyard.dev/inject", "operator": "NotIn", "values": ["enabled"]},
            {"key": "switchyard.dev/inject", "operator": "In", "values": ["true"]}),
    }


def test_non_default_values_render_where_they_should():
    objs = render({
        "operator": {"replicas": 3, "tlsSans": ["operator.example.com"], "image": {"repository": "registry.local/op", "tag": "dev"}},
        "sidecar": {"image": {"repository": "registry.local/sidecar", "tag": "dev"}},
        "webhook": {"failurePolicy": "Fail", "timeoutSeconds": 10},
    })
    deploy = objs[("Deployment", "switchyard-operator")]
    assert deploy["spec"]["replicas"] == 3
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.local/op:dev"
    assert "--sidecar-image=registry.local/sidecar:dev" in container["args"]
    assert "--tls-san=operator.example.com" in container["args"]
    for hook in objs[("MutatingWebhookConfiguration", "switchyard-sidecar-injector")]["webhooks"]:
        assert hook["failurePolicy"] == "Fail"
        assert hook["timeoutSeconds"] == 10
        assert hook["namespaceSelector"]["matchExpressions"][1]["values"] == ["switchyard-system", "kube-system"], \
            "fail closed never locks the operator out of its own namespace"


def test_sidecar_resources_and_ports_and_certificate_lifetimes_reach_the_operator():
    args = render({
        "sidecar": {"resources": {"requests": {"cpu": "20m"}}, "ports": {"data": 5000, "admin": 5001}},
        "operator": {"certificates": {"caValidity": "43800h", "servingValidity": "720h"}},
    })[("Deployment", "switchyard-operator")]["spec"]["template"]["spec"]["containers"][0]["args"]
    # Helm merges maps: the override changes one figure and keeps the rest.
    assert '--sidecar-resources={"limits":{"memory":"128Mi"},"requests":{"cpu":"20m","memory":"16Mi"}}' in args
    assert "--sidecar-port=5000" in args and "--sidecar-admin-port=5001" in args
    assert "--ca-validity=43800h" in args and "--cert-validity=720h" in args
    assert not any(a.startswith("--tls-dir") for a in args)


def test_cert_manager_issues_the_serving_certificate_and_injects_the_ca():
    objs = render({"certManager": {"enabled": True}, "operator": {"tlsSans": ["op.example", "10.1.2.3"]}})
    cert = objs[("Certificate", "switchyard-operator-tls")]["spec"]
    assert "switchyard-operator.switchyard-system.svc" in cert["dnsNames"]
    assert "op.example" in cert["dnsNames"] and "10.1.2.3" in cert["ipAddresses"]
    assert cert["issuerRef"] == {"name": "switchyard-ca", "kind": "Issuer", "group": "cert-manager.io"}
    assert objs[("Certificate", "switchyard-ca")]["spec"]["isCA"] is True
    assert objs[("Issuer", "switchyard-ca")]["spec"]["ca"]["secretName"] == "switchyard-cert-manager-ca"
    pod = objs[("Deployment", "switchyard-operator")]["spec"]["template"]["spec"]
    assert "--tls-dir=/etc/switchyard/tls" in pod["containers"][0]["args"]
    assert pod["volumes"] == [{"name": "tls", "secret": {"secretName": "switchyard-operator-tls"}}]
    mwc = objs[("MutatingWebhookConfiguration", "switchyard-sidecar-injector")]
    assert mwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == "switchyard-system/switchyard-operator-tls"
    # An issuer of the platform's own: no CA of the chart's.
    objs = render({"certManager": {"enabled": True, "issuerRef": {"name": "corp", "kind": "ClusterIssuer"}}})
    assert objs[("Certificate", "switchyard-operator-tls")]["spec"]["issuerRef"]["name"] == "corp"
    assert ("Issuer", "switchyard-ca") not in objs
    # Off by default.
    assert not [k for k in render() if k[0] in ("Certificate", "Issuer")]


def test_a_webhook_url_replaces_the_service():
    hooks = render({"webhook": {"url": "https://127.0.0.1:9443/inject"}})[
        ("MutatingWebhookConfiguration", "switchyard-sidecar-injector")]["webhooks"]
    assert [h["clientConfig"] for h in hooks] == [{"url": "https://127.0.0.1:9443/inject"}] * 2


@pytest.mark.parametrize("bad", [
    {"operator": {"replicas": 0}},
    {"webhook": {"failurePolicy": "Sometimes"}},
    {"ports": {"config": 70000}},
    {"operator": {"image": {"repository": "x", "pullPolicy": "Maybe"}}},
    {"unknownKey": True},
    {"sidecar": {"ports": {"data": 0}}},
    {"sidecar": {"resources": {"request": {}}}},
    {"operator": {"certificates": {"servingValidity": "90 days"}}},
    {"certManager": {"enabled": "yes"}},
    {"certManager": {"issuerRef": {"name": "x", "kind": "Vault"}}},
    {"webhook": {"url": "http://insecure/inject"}},
])
def test_the_schema_rejects_bad_values(bad):
    chart = helm.Chart.load(CHART)
    with pytest.raises(helm.HelmError):
        chart.validate_schema(chart.merge_values(bad))


def test_the_charts_crds_are_the_generated_ones():
    for generated in sorted((ROOT / "crds" / "manifests").glob("*.yaml")):
        assert (CHART / "crds" / generated.name).read_text() == generated.read_text(), generated.name


def test_the_charts_rbac_equals_the_operators_declared_rbac():
    objs = render()
    declared = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all((ROOT / "deploy" / "operator-rbac.yaml").read_text()) if d}
    for key in [("ClusterRole", "switchyard-operator"), ("Role", "switchyard-operator")]:
        assert objs[key]["rules"] == declared[key]["rules"], key


def test_secret_access_can_be_limited_to_listed_namespaces():
    objs = render({"rbac": {"secretNamespaces": ["team-a", "team-b"]}})
    cluster = objs[("ClusterRole", "switchyard-operator")]["rules"]
    assert not [r for r in cluster if "secrets" in r["resources"]], "no cluster-wide Secret access"
    roles = [d for d in render_docs({"rbac": {"secretNamespaces": ["team-a", "team-b"]}}) if d["kind"] in ("Role", "RoleBinding") and d["metadata"]["name"] == "switchyard-operator-secrets"]
    assert sorted((d["kind"], d["metadata"]["namespace"]) for d in roles) == [
        ("Role", "team-a"), ("Role", "team-b"), ("RoleBinding", "team-a"), ("RoleBinding", "team-b")]
    for d in roles:
        if d["kind"] == "Role":
            assert d["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]}]
        else:
            assert d["subjects"] == [{"kind": "ServiceAccount", "name": "switchyard-operator", "namespace": "switchyard-system"}]
    default = render()[("ClusterRole", "switchyard-operator")]["rules"]
    assert [r for r in default if r["resources"] == ["secrets"]], "cluster-wide by default"


def test_dashboards_and_pod_monitors_render_when_enabled():
    assert not any(k[0] in ("ConfigMap", "PodMonitor") and "dashboard" in k[1] for k in render())
    objs = render({"dashboards": {"enabled": True, "namespace": "monitoring"}, "podMonitor": {"enabled": True, "interval": "15s"}})
    cm = objs[("ConfigMap", "switchyard-dashboard")]
    assert cm["metadata"]["namespace"] == "monitoring"
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    import json
    dashboard = json.loads(cm["data"]["switchyard.json"])
    assert dashboard == json.loads((CHART / "dashboards" / "switchyard.json").read_text())
    assert len(dashboard["panels"]) >= 12
    sidecars = objs[("PodMonitor", "switchyard-sidecars")]
    assert sidecars["spec"]["selector"]["matchLabels"] == {"switchyard.dev/inject": "true"}
    assert sidecars["spec"]["podMetricsEndpoints"][0]["port"] == "sy-admin"
    assert sidecars["spec"]["podMetricsEndpoints"][0]["interval"] == "15s"
    operator = objs[("PodMonitor", "switchyard-operator")]
    assert operator["spec"]["podMetricsEndpoints"][0]["port"] == "admin"


def test_sidecar_env_reaches_the_operator_for_injection():
    objs = render({"sidecar": {"env": [{"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "http://otel:4318"}]}})
    args = objs[("Deployment", "switchyard-operator")]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert '--sidecar-env=[{"name":"OTEL_EXPORTER_OTLP_ENDPOINT","value":"http://otel:4318"}]' in args
