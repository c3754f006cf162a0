"""Coding-agent CLIs from npm (pinned in tests/agents/package.json), driven through the
sidecar against each backend type, contained to loopback."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, bin_dir

AGENTS = ROOT / "tests" / "agents"
HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def agent_bin():
    """Installs the pinned CLIs once (npm ci), returning their bin directory."""
    bin_path = AGENTS / "node_modules" / ".bin"
    if not all((bin_path / cli).exists() for cli in ["codex", "claude", "gemini"]):
        if shutil.which("npm") is None:
            pytest.skip("npm is not installed")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=AGENTS, check=True)
    return bin_path


def contained(spec: dict) -> dict:
    """Runs the spec in a loopback-only network namespace (or, where user namespaces are
    forbidden, with every proxy variable pointing at a closed port)."""
    spec = {**spec, "bins": str(bin_dir())}
    argv = [sys.executable, str(HERE / "contained.py"), json.dumps(spec)]
    probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True)
    env = dict(os.environ)
    if probe.returncode == 0:
        argv = ["unshare", "-rn"] + argv
    else:
        dead = "http://127.0.0.1:9"
        env.update({"HTTP_PROXY": dead, "HTTPS_PROXY": dead, "ALL_PROXY": dead, "NO_PROXY": "127.0.0.1,localhost"})
    out = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def served_by(metrics: str, provider: str) -> bool:
    return any(
        line.startswith("gen_ai_client_operation_duration_seconds_count")
        and f'gen_ai_provider_name="{provider}"' in line
        and 'error_type=""' in line
        for line in metrics.splitlines()
    )


CODEX_CONFIG = """
model = "via-{provider}"
model_provider = "switchyard"
[model_providers.switchyard]
name = "Switchyard"
base_url = "{{URL}}/v1"
wire_api = "responses"
env_key = "SWITCHYARD_PLACEHOLDER_KEY"
request_max_retries = 0
stream_max_retries = 0
[analytics]
enabled = false
"""


@pytest.mark.parametrize("provider", ["openai", "openai-responses", "anthropic", "gemini"])
def test_codex_exec_runs_a_shell_tool_through_the_sidecar(agent_bin, provider):
    result = contained({
        "argv": [str(agent_bin / "codex"), "exec", "--skip-git-repo-check", "-s", "danger-full-access",
                 "create hello.txt by running `printf hi > hello.txt`"],
        "env": {"CODEX_HOME": "{HOME}/.codex", "SWITCHYARD_PLACEHOLDER_KEY": "placeholder"},
        "files": {".codex/config.toml": CODEX_CONFIG.format(provider=provider)},
    })
    assert result["code"] == 0, result["stderr"]
    assert result["files"].get("hello.txt") == "hi", result
    assert "the tool said" in result["stdout"], result["stdout"]
    assert served_by(result["metrics"], provider), result["metrics"]


CLAUDE_ENV = {
    "ANTHROPIC_BASE_URL": "{URL}",
    "ANTHROPIC_API_KEY": "placeholder",
    "HOME": "{HOME}",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_AUTOUPDATER": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
}


@pytest.mark.parametrize("provider", ["anthropic", "openai", "openai-responses", "gemini"])
def test_claude_code_runs_a_bash_tool_through_the_sidecar(agent_bin, provider):
    env = {**CLAUDE_ENV, "ANTHROPIC_DEFAULT_HAIKU_MODEL": f"via-{provider}", "ANTHROPIC_SMALL_FAST_MODEL": f"via-{provider}"}
    result = contained({
        "argv": [str(agent_bin / "claude"), "-p", "--model", f"via-{provider}", "--allowedTools", "Bash", "--",
                 "create hello.txt by running `printf hi > hello.txt`"],
        "env": env,
    })
    assert result["code"] == 0, result["stderr"]
    assert result["files"].get("hello.txt") == "hi", result
    assert "the tool said" in result["stdout"], result["stdout"]
    assert served_by(result["metrics"], provider), result["metrics"]


GEMINI_SETTINGS = json.dumps({
    "security": {"auth": {"selectedType": "gemini-api-key"}, "folderTrust": {"enabled": False}},
    "privacy": {"usageStatisticsEnabled": False},
    "general": {"disableAutoUpdate": True, "disableUpdateNag": True},
})


@pytest.mark.parametrize("provider", ["gemini", "openai", "anthropic"])
def test_gemini_cli_runs_a_shell_tool_through_the_sidecar(agent_bin, provider):
    result = contained({
        "argv": [str(agent_bin / "gemini"), "-m", f"via-{provider}", "--yolo", "-p",
                 "create hello.txt by running `printf hi > hello.txt`"],
        "env": {"GEMINI_API_KEY": "placeholder", "GOOGLE_GEMINI_BASE_URL": "{URL}", "HOME": "{HOME}", "GEMINI_CLI_NO_RELAUNCH": "true"},
        "files": {".gemini/settings.json": GEMINI_SETTINGS},
    })
    assert result["code"] == 0, result["stderr"]
    assert result["files"].get("hello.txt") == "hi", result
    assert "the tool said" in result["stdout"], result["stdout"]
    assert served_by(result["metrics"], provider), result["metrics"]
