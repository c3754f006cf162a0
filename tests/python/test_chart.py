"""The Helm chart, through Helm's own Go SDK (helm-python-sdk): lint, render with default
and non-default values, schema rejection, and agreement with the generated CRDs and the
operator's RBAC."""

from pathlib import Path

import helm_python as helm
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "switchyard"


def render(values=None, kube_version=None):
    chart = helm.Chart.load(CHART)
    out = chart.render(values, name="switchyard", namespace="switchyard-system", is_install=True)
    docs = []
    for text in out.values():
        docs.extend(d for d in yaml.safe_load_all(text) if d)
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


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
    assert deploy["spec"]["template"]["metadata"]["annotations"]["switchyard.dev/inject"] == "false"
    assert objs[("PodDisruptionBudget", "switchyard-operator")]["spec"]["minAvailable"] == 1
    service = objs[("Service", "switchyard-operator")]
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {"config": 8443, "webhook": 443, "admin": 8080}
    hook = objs[("MutatingWebhookConfiguration", "switchyard-sidecar-injector")]["webhooks"][0]
    assert hook["failurePolicy"] == "Ignore"
    assert hook["clientConfig"]["service"] == {"name": "switchyard-operator", "namespace": "switchyard-system", "path": "/inject", "port": 443}


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
    hook = objs[("MutatingWebhookConfiguration", "switchyard-sidecar-injector")]["webhooks"][0]
    assert hook["failurePolicy"] == "Fail"
    assert hook["timeoutSeconds"] == 10


@pytest.mark.parametrize("bad", [
    {"operator": {"replicas": 0}},
    {"webhook": {"failurePolicy": "Sometimes"}},
    {"ports": {"config": 70000}},
    {"operator": {"image": {"repository": "x", "pullPolicy": "Maybe"}}},
    {"unknownKey": True},
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
