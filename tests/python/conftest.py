"""Runs the real switchyard-sidecar binary against the fake providers for the SDK tests.

The binaries are built with cargo at session start (a no-op when they are fresh);
SWITCHYARD_BIN_DIR points at already-built ones instead.
"""

import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-fake-provider-key-0123456789"


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(n: int) -> list:
    """`n` distinct free ports: each socket is held until all are picked (a port let go can be
    handed out again by the next bind, and two services then race for it)."""
    held = [socket.socket() for _ in range(n)]
    try:
        for s in held:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in held]
    finally:
        for s in held:
            s.close()


def bin_dir() -> Path:
    if os.environ.get("SWITCHYARD_BIN_DIR"):
        return Path(os.environ["SWITCHYARD_BIN_DIR"])
    subprocess.run(
        ["cargo", "build", "--quiet", "-p", "switchyard-sidecar", "-p", "switchyard-tests", "--bins"],
        cwd=ROOT,
        check=True,
    )
    return ROOT / "target" / "debug"


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} not ready")


MANIFEST = """
apiVersion: v1
kind: Secret
metadata: {{name: keys}}
stringData: {{key: {key}}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {{name: openai}}
spec: {{type: openai, baseUrl: "http://127.0.0.1:{openai}/v1", credentials: {{secretRef: {{name: keys, key: key}}}}}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {{name: openai-responses}}
spec: {{type: openai, api: responses, baseUrl: "http://127.0.0.1:{openai}/v1", credentials: {{secretRef: {{name: keys, key: key}}}}}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {{name: azure}}
spec: {{type: azure-openai, baseUrl: "http://127.0.0.1:{azure}", azure: {{apiVersion: "2024-10-21"}}, credentials: {{secretRef: {{name: keys, key: key}}}}}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {{name: anthropic}}
spec: {{type: anthropic, baseUrl: "http://127.0.0.1:{anthropic}", credentials: {{secretRef: {{name: keys, key: key}}}}}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {{name: gemini}}
spec: {{type: gemini, baseUrl: "http://127.0.0.1:{gemini}", credentials: {{secretRef: {{name: keys, key: key}}}}}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {{name: mock}}
spec: {{type: mock}}
"""

BACKENDS = {
    "openai": "gpt-4o-2024-08-06",
    "openai-responses": "gpt-5",
    "azure": "gpt4o-deployment",
    "anthropic": "claude-sonnet-4-5",
    "gemini": "gemini-2.5-flash",
    "mock": "mock-1",
}


def start_fakes(bins: Path):
    """The fake providers on free ports, and the manifest serving `via-<provider>` for each."""
    names = ["openai", "azure", "anthropic", "gemini"]
    ports = dict(zip(names, free_ports(len(names))))
    fakes = subprocess.Popen(
        [str(bins / "fake-providers")] + [f"{n}=127.0.0.1:{p}" for n, p in ports.items()],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert fakes.stdout is not None
    if not any(line.strip() == "ready" for line in fakes.stdout):
        raise RuntimeError(f"the fake providers did not start (exit {fakes.wait()})")
    manifest = MANIFEST.format(key=KEY, **ports)
    for provider, model in BACKENDS.items():
        manifest += (
            "---\napiVersion: switchyard.dev/v1alpha1\nkind: AIModel\n"
            f"metadata: {{name: via-{provider}}}\n"
            f"spec: {{backends: [{{provider: {provider}, model: {model}}}]}}\n"
        )
    return fakes, manifest


@pytest.fixture(scope="session")
def gateway():
    """A sidecar serving `via-<provider>` for each provider type; yields its base URL."""
    bins = bin_dir()
    fakes, manifest = start_fakes(bins)
    workdir = tempfile.TemporaryDirectory()
    config = Path(workdir.name) / "switchyard.yaml"
    config.write_text(manifest)
    port, admin = free_ports(2)
    log = open(Path(workdir.name) / "sidecar.log", "w")
    sidecar = subprocess.Popen(
        [str(bins / "switchyard-sidecar"), "--config", str(config)],
        env={**os.environ, "SWITCHYARD_LISTEN": f"127.0.0.1:{port}", "SWITCHYARD_ADMIN_LISTEN": f"127.0.0.1:{admin}"},
        stderr=log,
    )
    try:
        wait_ready(f"http://127.0.0.1:{admin}/readyz", sidecar)
        yield {"url": f"http://127.0.0.1:{port}", "admin": f"http://127.0.0.1:{admin}", "log": Path(workdir.name) / "sidecar.log"}
    finally:
        sidecar.terminate()
        fakes.terminate()
        sidecar.wait(timeout=10)
        fakes.wait(timeout=10)
        log.close()
        workdir.cleanup()


def metrics(gateway) -> str:
    with urllib.request.urlopen(gateway["admin"] + "/metrics") as r:
        return r.read().decode()


def dumps(value) -> str:
    return json.dumps(value, sort_keys=True)
