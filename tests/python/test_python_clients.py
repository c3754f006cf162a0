"""The Python frameworks and tools that sit on the official SDKs: pydantic-ai (its OpenAI
chat and Responses, Anthropic and Google models), LangChain (ChatOpenAI on chat completions
and on the Responses API, ChatAnthropic, ChatGoogleGenerativeAI) and Simon Willison's `llm`
CLI, each pointed at the sidecar by base URL alone, against every backend type: text,
streams, structured output and a tool round trip."""

import asyncio
import json
import os
import shutil
import subprocess

import pytest
from pydantic import BaseModel

BACKENDS = ["openai", "openai-responses", "anthropic", "gemini"]


class City(BaseModel):
    city: str
    population: int


def weather(city: str) -> str:
    """The weather in a city."""
    return f"21C in {city}"


def pydantic_models(url: str, model: str) -> dict:
    from google.genai import Client
    from google.genai.types import HttpOptions
    from pydantic_ai.models.anthropic import AnthropicModel
    from pydantic_ai.models.google import GoogleModel
    from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
    from pydantic_ai.providers.anthropic import AnthropicProvider
    from pydantic_ai.providers.google import GoogleProvider
    from pydantic_ai.providers.openai import OpenAIProvider

    key = "sk-never-used"
    return {
        "openai chat": OpenAIChatModel(model, provider=OpenAIProvider(base_url=f"{url}/v1", api_key=key)),
        "openai responses": OpenAIResponsesModel(model, provider=OpenAIProvider(base_url=f"{url}/v1", api_key=key)),
        "anthropic": AnthropicModel(model, provider=AnthropicProvider(base_url=url, api_key=key)),
        # Google's Python SDK names some fields as in the .proto (`parameters_json_schema`).
        "google": GoogleModel(
            model, provider=GoogleProvider(client=Client(api_key=key, http_options=HttpOptions(base_url=url)))
        ),
    }


@pytest.mark.parametrize("backend", BACKENDS)
def test_pydantic_ai_agents_run_through_the_sidecar(gateway, backend):
    from pydantic_ai import Agent

    for name in pydantic_models(gateway["url"], "x"):
        # A model per run: an SDK client is bound to the event loop it first ran on.
        def model():
            return pydantic_models(gateway["url"], f"via-{backend}")[name]

        assert Agent(model()).run_sync("Say hi").output == "Say hi", name
        city = Agent(model(), output_type=City).run_sync("A city").output
        assert isinstance(city, City) and city.population == 1, name
        answer = Agent(model(), tools=[weather]).run_sync("Weather in Paris?").output
        assert "21C in Paris" in answer, (name, answer)

        async def streamed():
            async with Agent(model()).run_stream("Say hi") as run:
                return await run.get_output()

        assert asyncio.run(streamed()) == "Say hi", name


@pytest.mark.parametrize("backend", BACKENDS)
def test_langchain_chat_models_run_through_the_sidecar(gateway, backend):
    from langchain_anthropic import ChatAnthropic
    from langchain_core.tools import tool
    from langchain_google_genai import ChatGoogleGenerativeAI
    from langchain_openai import ChatOpenAI

    url, model, key = gateway["url"], f"via-{backend}", "sk-never-used"
    chats = {
        "openai": ChatOpenAI(model=model, base_url=f"{url}/v1", api_key=key, max_retries=0),
        "openai responses": ChatOpenAI(
            model=model, base_url=f"{url}/v1", api_key=key, max_retries=0, use_responses_api=True
        ),
        "anthropic": ChatAnthropic(model=model, base_url=url, api_key=key, max_retries=0),
        "google": ChatGoogleGenerativeAI(model=model, google_api_key=key, base_url=url),
    }
    get_weather = tool(weather)
    for name, chat in chats.items():
        assert chat.invoke("Say hi").text == "Say hi", name
        assert "".join(c.text for c in chat.stream("Say hi")) == "Say hi", name
        city = chat.with_structured_output(City).invoke("A city")
        assert isinstance(city, City), (name, city)
        call = chat.bind_tools([get_weather]).invoke("Weather in Paris?")
        assert [c["name"] for c in call.tool_calls] == ["weather"], (name, call)
        assert call.tool_calls[0]["args"].get("city"), (name, call.tool_calls)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_llm_cli_runs_through_the_sidecar(gateway, backend, tmp_path):
    llm = shutil.which("llm")
    if llm is None:
        pytest.skip("the llm CLI is not installed (tests/python/requirements.txt)")
    (tmp_path / "extra-openai-models.yaml").write_text(
        f"- model_id: switchyard\n  model_name: via-{backend}\n  api_base: {gateway['url']}/v1\n"
        "  api_key_name: switchyard\n  supports_schema: true\n  supports_tools: true\n"
    )
    (tmp_path / "keys.json").write_text(json.dumps({"switchyard": "sk-never-used"}))
    env = {**os.environ, "LLM_USER_PATH": str(tmp_path)}

    def run(*args: str) -> str:
        out = subprocess.run([llm, "-m", "switchyard", *args], capture_output=True, text=True, env=env, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    assert run("Say hi") == "Say hi"
    assert run("--no-stream", "Say hi") == "Say hi"
    assert json.loads(run("--schema", "city, population int", "A city")) == {"city": "A city", "population": 1}
    function = 'def get_weather(city: str) -> str:\n    "Weather in a city"\n    return "21C in " + city\n'
    assert "the tool said 21C in Paris" in run("--functions", function, "Weather in Paris?")
