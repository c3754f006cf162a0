"""Google's official google-genai SDK, unchanged, against the real sidecar's Gemini endpoint."""

import pytest
from google import genai
from google.genai import types

from conftest import BACKENDS

PROVIDERS = list(BACKENDS)


@pytest.fixture(scope="module")
def gem(gateway):
    return genai.Client(api_key="placeholder", http_options=types.HttpOptions(base_url=gateway["url"], api_version="v1beta"))


@pytest.mark.parametrize("provider", PROVIDERS)
def test_google_sdk_generate_content(gem, provider):
    response = gem.models.generate_content(
        model=f"via-{provider}",
        contents="hello from the google sdk",
        config=types.GenerateContentConfig(system_instruction="be brief"),
    )
    assert response.text == "hello from the google sdk"
    assert response.candidates[0].finish_reason == types.FinishReason.STOP
    assert response.usage_metadata.candidates_token_count == 5


@pytest.mark.parametrize("provider", PROVIDERS)
def test_google_sdk_streaming(gem, provider):
    chunks = list(gem.models.generate_content_stream(model=f"via-{provider}", contents="stream these five words"))
    assert "".join(c.text or "" for c in chunks) == "stream these five words"
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata.candidates_token_count == 4


@pytest.mark.parametrize("provider", [p for p in PROVIDERS if p != "mock"])
def test_google_sdk_function_calls_and_responses(gem, provider):
    tool = types.Tool(function_declarations=[types.FunctionDeclaration(
        name="get_weather", description="Weather for a city",
        parameters=types.Schema(type="OBJECT", properties={"city": types.Schema(type="STRING")}, required=["city"]),
    )])
    config = types.GenerateContentConfig(tools=[tool], automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True))
    first = types.Content(role="user", parts=[types.Part(text="weather in two cities, in parallel")])
    response = gem.models.generate_content(model=f"via-{provider}", contents=[first], config=config)
    calls = response.function_calls
    assert len(calls) == 2 and all(c.name == "get_weather" and isinstance(c.args["city"], str) for c in calls)
    history = [
        first,
        response.candidates[0].content,
        types.Content(role="user", parts=[types.Part.from_function_response(name=c.name, response={"result": "cloudy"}) for c in calls]),
    ]
    final = gem.models.generate_content(model=f"via-{provider}", contents=history, config=config)
    assert "cloudy" in final.text


@pytest.mark.parametrize("provider", ["openai", "gemini", "mock"])
def test_google_sdk_embeddings(gem, provider):
    one = gem.models.embed_content(model=f"via-{provider}", contents="one text")
    assert len(one.embeddings) == 1 and len(one.embeddings[0].values) > 0
    # Depending on its version and the model's name, the SDK folds a list into one
    # multi-part content (one vector) or sends one content per text (a vector each).
    many = gem.models.embed_content(model=f"via-{provider}", contents=["first text", "second text"])
    assert len(many.embeddings) == 2 or ("gemini" in provider and len(many.embeddings) == 1)
    assert all(len(e.values) > 0 for e in many.embeddings)


def test_google_sdk_errors_are_typed(gem):
    from google.genai import errors

    with pytest.raises(errors.ClientError) as err:
        gem.models.generate_content(model="no-such-model", contents="x")
    assert err.value.code == 404


def test_google_sdk_count_tokens_is_answered_locally(gem):
    counted = gem.models.count_tokens(model="via-openai", contents="how many tokens is this sentence")
    assert 5 <= counted.total_tokens < 100
    with pytest.raises(genai.errors.ClientError) as missing:
        gem.models.count_tokens(model="no-such-model", contents="hi")
    assert missing.value.code == 404
