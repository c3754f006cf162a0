"""aider (pinned in tests/aider/requirements.txt, in a virtualenv of its own) driven through
the sidecar, contained to loopback: through litellm's OpenAI client (`openai/<model>` with
`OPENAI_API_BASE`) and its Anthropic client (`anthropic/<model>` with `ANTHROPIC_API_BASE`),
against each backend type."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from test_agent_clis import contained, served_by

AIDER = ROOT / "tests" / "aider"


@pytest.fixture(scope="module")
def aider():
    """The pinned aider, installed once into tests/aider/.venv."""
    venv = AIDER / ".venv"
    exe = venv / "bin" / "aider"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
                        "-r", str(AIDER / "requirements.txt")], check=True)
    return exe


def ask(aider: Path, model: str, env: dict) -> dict:
    return contained({
        "argv": [str(aider), "--model", model, "--chat-mode", "ask", "--no-git", "--no-pretty",
                 "--no-stream" if "anthropic/" in model else "--stream",
                 "--yes-always", "--no-check-update", "--no-show-model-warnings", "--no-analytics",
                 "--message", "Which number comes after 41? (marker 7731)"],
        # litellm uses the price list it ships; aider's own fetch of one fails at once here.
        "env": {"HOME": "{HOME}", "LITELLM_LOCAL_MODEL_COST_MAP": "True", **env},
    })


def answered(result: dict) -> None:
    assert result["code"] == 0, result["stderr"] + result["stdout"]
    # The fakes echo the question: aider printed the answer, and the usage came back.
    assert "marker 7731" in result["stdout"], result["stdout"]
    tokens = re.search(r"Tokens: ([\d.k]+) sent, ([\d.k]+) received", result["stdout"])
    assert tokens and tokens.group(2) != "0", result["stdout"]


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
def test_aider_through_the_openai_dialect(aider, provider):
    result = ask(aider, f"openai/via-{provider}", {"OPENAI_API_BASE": "{URL}/v1", "OPENAI_API_KEY": "placeholder"})
    answered(result)
    assert served_by(result["metrics"], provider), result["metrics"]


@pytest.mark.parametrize("provider", ["anthropic", "openai"])
def test_aider_through_the_anthropic_dialect(aider, provider):
    result = ask(aider, f"anthropic/via-{provider}", {"ANTHROPIC_API_BASE": "{URL}", "ANTHROPIC_API_KEY": "placeholder"})
    answered(result)
    assert served_by(result["metrics"], provider), result["metrics"]
