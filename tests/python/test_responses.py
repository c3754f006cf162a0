"""The official OpenAI SDK's Responses API and the OpenAI Agents SDK, unchanged, against the
real sidecar and every provider type behind it."""

import asyncio

import openai
import pytest
from pydantic import BaseModel

from conftest import BACKENDS

PROVIDERS = list(BACKENDS)
TOOL_PROVIDERS = [p for p in PROVIDERS if p != "mock"]

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture(scope="module")
def oai(gateway):
    return openai.OpenAI(base_url=gateway["url"] + "/v1", api_key="placeholder", max_retries=0)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_responses_create(oai, provider):
    raw = oai.responses.with_raw_response.create(
        model=f"via-{provider}",
        instructions="be brief",
        input=[{"role": "user", "content": [{"type": "input_text", "text": "hello from responses"}]}],
    )
    r = raw.parse()
    assert r.output_text == "hello from responses"
    assert r.status == "completed"
    assert r.id.startswith("resp_")
    assert r.usage.output_tokens == 3
    assert r.usage.input_tokens_details.cached_tokens == 0
    assert r.usage.output_tokens_details.reasoning_tokens == 0
    assert raw.headers["x-switchyard-provider"] == provider


@pytest.mark.parametrize("provider", PROVIDERS)
def test_responses_stream_helper_accumulates_every_event(oai, provider):
    with oai.responses.stream(model=f"via-{provider}", input="stream these five words") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert "response.output_text.delta" in kinds and "response.output_item.done" in kinds
    assert final.output_text == "stream these five words"
    assert final.usage.output_tokens == 4


def test_reasoning_effort_on_anthropic_comes_back_as_a_typed_reasoning_summary(oai):
    r = oai.responses.create(model="via-anthropic", input="why is the sky blue", reasoning={"effort": "low"})
    assert [item.type for item in r.output] == ["reasoning", "message"]
    assert r.output[0].summary[0].text.startswith("The user wants")
    assert r.output_text == "why is the sky blue"
    with oai.responses.stream(model="via-anthropic", input="why is the sky blue", reasoning={"effort": "low"}) as stream:
        deltas = [e.delta for e in stream if e.type == "response.reasoning_summary_text.delta"]
        final = stream.get_final_response()
    assert "".join(deltas) == final.output[0].summary[0].text
    assert final.output_text == "why is the sky blue"


class Answer(BaseModel):
    answer: str


@pytest.mark.parametrize("provider", TOOL_PROVIDERS)
def test_responses_parse_structured_output(oai, provider):
    r = oai.responses.parse(model=f"via-{provider}", input="Paris", text_format=Answer)
    assert isinstance(r.output_parsed, Answer)
    assert r.output_parsed.answer


@pytest.mark.parametrize("provider", TOOL_PROVIDERS)
@pytest.mark.parametrize("stream", [False, True])
def test_responses_parallel_function_calls_and_outputs(oai, provider, stream):
    ask = [{"role": "user", "content": "weather in two parallel cities?"}]
    if stream:
        with oai.responses.stream(model=f"via-{provider}", input=ask, tools=[WEATHER]) as s:
            for _ in s:
                pass
            first = s.get_final_response()
    else:
        first = oai.responses.create(model=f"via-{provider}", input=ask, tools=[WEATHER])
    calls = [i for i in first.output if i.type == "function_call"]
    assert len(calls) == 2
    assert all(c.name == "get_weather" and "city" in c.arguments for c in calls)
    follow = ask + [c.model_dump(exclude_none=True) for c in calls]
    follow += [{"type": "function_call_output", "call_id": c.call_id, "output": "sunny"} for c in calls]
    second = oai.responses.create(model=f"via-{provider}", input=follow, tools=[WEATHER])
    assert "sunny" in second.output_text


@pytest.mark.parametrize("provider", ["anthropic", "gemini", "openai-responses"])
def test_previous_response_id_and_stored_responses(oai, provider):
    first = oai.responses.create(model=f"via-{provider}", input="my name is Ada")
    second = oai.responses.create(model=f"via-{provider}", input="and yours?", previous_response_id=first.id)
    assert second.output_text == "and yours?"
    assert oai.responses.retrieve(first.id).output_text == "my name is Ada"
    oai.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        oai.responses.retrieve(first.id)
    if provider != "openai-responses":
        with pytest.raises(openai.BadRequestError) as e:
            oai.responses.create(model=f"via-{provider}", input="hi", previous_response_id=first.id)
        assert e.value.code == "previous_response_not_found"


def test_responses_bad_input_raises_typed_errors(oai):
    with pytest.raises(openai.BadRequestError) as e:
        oai.responses.create(model="via-anthropic", input=[{"type": "function_call_output", "call_id": "nope", "output": "x"}])
    assert "nope" in e.value.message
    with pytest.raises(openai.NotFoundError):
        oai.responses.create(model="no-such-model", input="hi")


@pytest.mark.parametrize("provider", TOOL_PROVIDERS)
def test_openai_agents_sdk_runs_a_tool_loop(gateway, provider):
    import agents

    client = openai.AsyncOpenAI(base_url=gateway["url"] + "/v1", api_key="placeholder", max_retries=0)
    agents.set_tracing_disabled(True)

    @agents.function_tool
    def get_weather(city: str) -> str:
        """Current weather for a city."""
        return f"sunny in {city}"

    agent = agents.Agent(
        name="weather",
        instructions="Answer with the tool's result.",
        tools=[get_weather],
        model=agents.OpenAIResponsesModel(model=f"via-{provider}", openai_client=client),
    )

    async def run():
        result = await agents.Runner.run(agent, "What is the weather in Paris?")
        streamed = agents.Runner.run_streamed(agent, "What is the weather in Lima?")
        async for _ in streamed.stream_events():
            pass
        return result.final_output, streamed.final_output

    whole, streamed = asyncio.run(run())
    assert "sunny in" in whole
    assert "sunny in" in streamed
