"""Runs a coding-agent CLI against the real sidecar and the fake providers, all inside one
network namespace that has nothing but loopback (`unshare -rn`), so the agent cannot reach
anything else. Invoked by the tests as `unshare -rn python3 contained.py SPEC_JSON`; prints
one JSON line with what happened. Without `unshare` (a host that forbids user namespaces)
the tests run it directly, with every proxy variable pointing at a closed port."""

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from conftest import free_ports, start_fakes, wait_ready  # noqa: E402


def main(spec: dict) -> dict:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=False, capture_output=True)
    bins = Path(spec["bins"])
    fakes, manifest = start_fakes(bins)
    work = Path(tempfile.mkdtemp())
    (work / "switchyard.yaml").write_text(manifest)
    port, admin = free_ports(2)
    log = open(work / "sidecar.log", "w")
    sidecar = subprocess.Popen(
        [str(bins / "switchyard-sidecar"), "--config", str(work / "switchyard.yaml")],
        env={**os.environ, "SWITCHYARD_LISTEN": f"127.0.0.1:{port}", "SWITCHYARD_ADMIN_LISTEN": f"127.0.0.1:{admin}"},
        stderr=log,
    )
    try:
        wait_ready(f"http://127.0.0.1:{admin}/readyz", sidecar)
        cwd = work / "project"
        cwd.mkdir()
        home = work / "home"
        home.mkdir()
        for name, text in spec.get("files", {}).items():
            path = home / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text.replace("{URL}", f"http://127.0.0.1:{port}"))
        env = {**os.environ, **{k: v.replace("{URL}", f"http://127.0.0.1:{port}").replace("{HOME}", str(home)) for k, v in spec["env"].items()}}
        try:
            run = subprocess.run(spec["argv"], cwd=cwd, env=env, capture_output=True, text=True, timeout=spec.get("timeout", 120))
            code, stdout, stderr = run.returncode, run.stdout, run.stderr
        except subprocess.TimeoutExpired as e:
            code, stdout, stderr = "timeout", str(e.stdout or ""), str(e.stderr or "")
        with urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics") as r:
            metrics = r.read().decode()
        files = {p.name: p.read_text() for p in cwd.iterdir() if p.is_file()}
        log.flush()
        tail = (work / "sidecar.log").read_text()[-3000:]
        return {"code": code, "stdout": stdout[-4000:], "stderr": stderr[-4000:], "files": files, "metrics": metrics, "sidecar_log": tail}
    finally:
        sidecar.terminate()
        fakes.terminate()
        sidecar.wait(timeout=10)
        fakes.wait(timeout=10)


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
