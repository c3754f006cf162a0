"""Propagation benchmark driver: see propagation.sh."""

import asyncio
import concurrent.futures
import json
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STREAMS = int(os.environ.get("STREAMS", "1000"))
CHANGES = int(os.environ.get("CHANGES", "50"))
NS, SYSTEM = "sy-prop", "sy-prop-system"
KUBECTL = shutil.which("kubectl") or str(Path.home() / ".cache/switchyard-k8s/bin/kubectl")


def kubectl(*args, stdin=None):
    return subprocess.run([KUBECTL, *args], input=stdin, capture_output=True, text=True, check=True).stdout


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def token(pod, uid):
    body = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                       "spec": {"audiences": ["switchyard"], "expirationSeconds": 7200,
                                "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": pod, "uid": uid}}})
    out = subprocess.run([KUBECTL, "create", "--raw", f"/api/v1/namespaces/{NS}/serviceaccounts/app/token", "-f", "-"],
                         input=body, capture_output=True, text=True, check=True).stdout
    return json.loads(out)["status"]["token"]


class Stream:
    def __init__(self):
        self.snapshots = []  # (time, version)


async def follow(port, ctx, tok, stream, ready):
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="localhost")
    writer.write(f"GET /v1/stream HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {tok}\r\n\r\n".encode())
    await writer.drain()
    status = await reader.readline()
    assert b" 200 " in status, status
    while (await reader.readline()) not in (b"\r\n", b""):
        pass
    ready.release()
    while True:
        size = await reader.readline()
        if not size:
            return
        n = int(size.strip() or b"0", 16)
        chunk = await reader.readexactly(n + 2)
        for line in chunk.split(b"\n"):
            if line.startswith(b'{"type":"snapshot"'):
                version = json.loads(line)["version"]
                stream.snapshots.append((time.perf_counter(), version))


async def main():
    kubectl("apply", "--validate=false", "-f", str(ROOT / "crds/manifests"))
    for ns in (NS, SYSTEM):
        subprocess.run([KUBECTL, "create", "namespace", ns], capture_output=True)
    pods = "".join(
        f"---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p{i}, namespace: {NS}, labels: {{app: bench}}}}\n"
        f"spec: {{serviceAccountName: app, containers: [{{name: app, image: busybox}}]}}\n" for i in range(STREAMS))
    kubectl("apply", "-f", "-", stdin=f"apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: app, namespace: {NS}}}\n" + pods)
    kubectl("apply", "-f", "-", stdin=f"""
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {{name: mock, namespace: {NS}}}
spec: {{type: mock}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIModel
metadata: {{name: chat, namespace: {NS}}}
spec: {{backends: [{{provider: mock, model: m0}}]}}
""")
    uids = json.loads(kubectl("get", "pods", "-n", NS, "-o", "json"))
    uid_of = {p["metadata"]["name"]: p["metadata"]["uid"] for p in uids["items"]}
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        tokens = list(pool.map(lambda i: token(f"p{i}", uid_of[f"p{i}"]), range(STREAMS)))

    work = Path(tempfile.mkdtemp())
    port, admin = free_port(), free_port()
    op = subprocess.Popen([str(ROOT / "target/release/switchyard-operator"), "--namespace", SYSTEM,
                           "--config-listen", f"127.0.0.1:{port}", "--admin-listen", f"127.0.0.1:{admin}",
                           "--webhook-listen", f"127.0.0.1:{free_port()}"],
                          env={**os.environ, "RUST_LOG": "warn"}, stderr=open(work / "operator.log", "w"))
    try:
        while True:
            try:
                with socket.create_connection(("127.0.0.1", admin), timeout=0.2) as s:
                    s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if s.recv(64).startswith(b"HTTP/1.1 200"):
                        break
            except OSError:
                pass
            time.sleep(0.05)
        ca = json.loads(kubectl("get", "configmap", "switchyard-ca", "-n", SYSTEM, "-o", "json"))["data"]["ca.crt"]
        ctx = ssl.create_default_context(cadata=ca)
        rss_before = rss_mib(op.pid)
        streams = [Stream() for _ in range(STREAMS)]
        ready = asyncio.Semaphore(0)
        tasks = [asyncio.create_task(follow(port, ctx, t, s, ready)) for t, s in zip(tokens, streams)]
        for _ in range(STREAMS):
            await ready.acquire()
        await asyncio.sleep(1)
        rss_streams = rss_mib(op.pid)
        every, each = [], []
        loop = asyncio.get_running_loop()
        for c in range(1, CHANGES + 1):
            yaml = (f"apiVersion: switchyard.dev/v1alpha1\nkind: AIModel\nmetadata: {{name: chat, namespace: {NS}}}\n"
                    f"spec: {{backends: [{{provider: mock, model: m{c}}}]}}\n")
            counts = [len(s.snapshots) for s in streams]
            await loop.run_in_executor(None, lambda: kubectl("apply", "-f", "-", stdin=yaml))
            applied = time.perf_counter()
            deadline = applied + 30
            while any(len(s.snapshots) <= n for s, n in zip(streams, counts)) and time.perf_counter() < deadline:
                await asyncio.sleep(0.002)
            lat = [(s.snapshots[n][0] - applied) * 1000 for s, n in zip(streams, counts) if len(s.snapshots) > n]
            missing = STREAMS - len(lat)
            assert missing == 0, f"{missing} streams did not get change {c}"
            each.extend(lat)
            every.append(max(lat))
        rss_peak = rss_mib(op.pid)
        for t in tasks:
            t.cancel()
        q = lambda xs, p: sorted(xs)[min(len(xs) - 1, int(len(xs) * p))]
        lines = [
            "# Config propagation benchmark\n",
            f"{STREAMS} sidecar streams on one operator, {CHANGES} changes; times from `kubectl apply` returning "
            f"to the new snapshot on the stream. Command: `bench/propagation.sh`.\n",
            f"- to every stream (per change): p50 {q(every, 0.5):.0f} ms, p99 {q(every, 0.99):.0f} ms, max {max(every):.0f} ms (target p99 <= 1000 ms)",
            f"- per stream: p50 {q(each, 0.5):.0f} ms, p99 {q(each, 0.99):.0f} ms",
            f"- operator RSS: {rss_before:.1f} MiB before the streams, {rss_streams:.1f} MiB with {STREAMS} streams, {rss_peak:.1f} MiB after the changes",
        ]
        out = ROOT / "bench/out"
        out.mkdir(exist_ok=True)
        (out / "propagation.md").write_text("\n".join(lines) + "\n")
        print("\n".join(lines))
    finally:
        op.terminate()
        op.wait(timeout=10)


if __name__ == "__main__":
    asyncio.run(main())
