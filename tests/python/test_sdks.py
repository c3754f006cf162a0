"""The official OpenAI and Anthropic Python SDKs, unchanged, against the real sidecar."""

import json

import anthropic
import openai
import pytest

from conftest import BACKENDS

PROVIDERS = list(BACKENDS)
TOOL_PROVIDERS = [p for p in PROVIDERS if p != "mock"]

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture(scope="module")
def oai(gateway):
    return openai.OpenAI(base_url=gateway["url"] + "/v1", api_key="placeholder", max_retries=0)


@pytest.fixture(scope="module")
def claude(gateway):
    return anthropic.Anthropic(base_url=gateway["url"], api_key="placeholder", max_retries=0)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_openai_sdk_chat_completion(oai, provider):
    raw = oai.chat.completions.with_raw_response.create(
        model=f"via-{provider}",
        messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello from the openai sdk"}],
    )
    completion = raw.parse()
    assert completion.choices[0].message.content == "hello from the openai sdk"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.completion_tokens == 5
    assert raw.headers["x-switchyard-provider"] == provider
    assert raw.headers["x-switchyard-model"] == BACKENDS[provider]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_openai_sdk_streaming_with_usage(oai, provider):
    stream = oai.chat.completions.create(
        model=f"via-{provider}",
        messages=[{"role": "user", "content": "stream these five words"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage, finish = "", None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
    assert text == "stream these five words"
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens == 4


@pytest.mark.parametrize("provider", TOOL_PROVIDERS)
@pytest.mark.parametrize("stream", [False, True])
def test_openai_sdk_parallel_tool_calls_and_results(oai, provider, stream):
    messages = [{"role": "user", "content": "weather in two cities, in parallel"}]
    if stream:
        calls = {}
        for chunk in oai.chat.completions.create(model=f"via-{provider}", messages=messages, tools=[WEATHER], stream=True):
            for tc in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
                entry = calls.setdefault(tc.index, {"id": tc.id, "name": tc.function.name, "arguments": ""})
                entry["arguments"] += tc.function.arguments or ""
        tool_calls = [
            {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
            for _, c in sorted(calls.items())
        ]
    else:
        message = oai.chat.completions.create(model=f"via-{provider}", messages=messages, tools=[WEATHER]).choices[0].message
        tool_calls = [tc.model_dump() for tc in message.tool_calls]
    assert len(tool_calls) == 2
    for tc in tool_calls:
        assert tc["function"]["name"] == "get_weather"
        assert isinstance(json.loads(tc["function"]["arguments"])["city"], str)
    messages.append({"role": "assistant", "content": None, "tool_calls": tool_calls})
    for tc in tool_calls:
        messages.append({"role": "tool", "tool_call_id": tc["id"], "content": "sunny"})
    final = oai.chat.completions.create(model=f"via-{provider}", messages=messages, tools=[WEATHER])
    assert "sunny" in final.choices[0].message.content


@pytest.mark.parametrize("provider", ["openai", "azure", "gemini", "mock"])
def test_openai_sdk_embeddings(oai, provider):
    # The SDK asks for base64 by default and decodes it itself.
    result = oai.embeddings.create(model=f"via-{provider}", input=["first text", "second text"])
    assert len(result.data) == 2
    assert all(len(d.embedding) > 0 and isinstance(d.embedding[0], float) for d in result.data)
    floats = oai.embeddings.create(model=f"via-{provider}", input="one", encoding_format="float")
    assert len(floats.data) == 1


def test_openai_sdk_lists_models_and_raises_typed_errors(oai):
    ids = sorted(m.id for m in oai.models.list())
    assert ids == sorted(f"via-{p}" for p in PROVIDERS)
    with pytest.raises(openai.NotFoundError) as err:
        oai.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    assert err.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError):
        oai.chat.completions.create(model="via-mock", messages="not a list")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_anthropic_sdk_message(claude, provider):
    raw = claude.messages.with_raw_response.create(
        model=f"via-{provider}",
        max_tokens=256,
        system="be brief",
        messages=[{"role": "user", "content": "hello from the anthropic sdk"}],
    )
    message = raw.parse()
    assert message.content[0].text == "hello from the anthropic sdk"
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == 5
    assert raw.headers["x-switchyard-provider"] == provider


@pytest.mark.parametrize("provider", PROVIDERS)
def test_anthropic_sdk_streaming(claude, provider):
    with claude.messages.stream(
        model=f"via-{provider}", max_tokens=256, messages=[{"role": "user", "content": "stream these five words"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == "stream these five words"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 4


@pytest.mark.parametrize("provider", TOOL_PROVIDERS)
def test_anthropic_sdk_parallel_tool_use_and_results(claude, provider):
    tools = [{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
    first = [{"role": "user", "content": "weather, in parallel"}]
    with claude.messages.stream(model=f"via-{provider}", max_tokens=256, tools=tools, messages=first) as stream:
        message = stream.get_final_message()
    uses = [b for b in message.content if b.type == "tool_use"]
    assert message.stop_reason == "tool_use"
    assert len(uses) == 2 and all(isinstance(u.input["city"], str) for u in uses)
    follow = first + [
        {"role": "assistant", "content": [u.model_dump() for u in uses]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": u.id, "content": "rainy"} for u in uses]},
    ]
    final = claude.messages.create(model=f"via-{provider}", max_tokens=256, tools=tools, messages=follow)
    assert "rainy" in final.content[0].text


def test_anthropic_sdk_raises_typed_errors(claude):
    with pytest.raises(anthropic.NotFoundError) as err:
        claude.messages.create(model="no-such-model", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert err.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.BadRequestError):
        claude.messages.create(model="via-mock", max_tokens=10, messages=[{"role": "robot", "content": "x"}])


def test_nothing_the_sdks_sent_reached_the_logs(gateway, oai):
    oai.chat.completions.create(model="via-openai", messages=[{"role": "user", "content": "CANARY-PROMPT-99"}])
    log = gateway["log"].read_text()
    assert "CANARY-PROMPT-99" not in log
    assert "sk-fake-provider-key" not in log
