"""The official Node SDKs (OpenAI, Anthropic, Google) and the Vercel AI SDK, pinned in
tests/clients/package.json, driven through the sidecar against each backend type: each SDK
with its defaults (the Google SDK on the stable `/v1` paths, the AI SDK's OpenAI provider on
the Responses API), only the base URL pointed at the sidecar."""

import json
import shutil
import subprocess

import pytest

from conftest import ROOT

CLIENTS = ROOT / "tests" / "clients"


@pytest.fixture(scope="module")
def node_clients():
    """Installs the pinned SDKs once (npm ci)."""
    if not (CLIENTS / "node_modules" / "ai").exists():
        if shutil.which("npm") is None:
            pytest.skip("npm is not installed")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=CLIENTS, check=True)
    return CLIENTS / "clients.mjs"


@pytest.mark.parametrize("provider", ["openai", "openai-responses", "azure", "anthropic", "gemini"])
def test_node_sdks_and_the_ai_sdk_work_through_the_sidecar(gateway, node_clients, provider):
    out = subprocess.run(
        ["node", str(node_clients), gateway["url"], f"via-{provider}"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    results = json.loads(out.stdout.strip().splitlines()[-1])
    failed = [f"{r['name']}: {r['error']}" for r in results if not r["ok"]]
    assert not failed, "\n\n".join(failed)
    # Every SDK and every AI SDK provider was exercised.
    names = {r["name"] for r in results}
    assert len(names) == 27, names
