"""Writes the agentic benchmark payloads: one coding-agent turn of about 100 KB (a long
history of tool calls and their results, 24 tool schemas), in OpenAI chat and Anthropic
Messages shape. Deterministic: `python3 bench/payloads/generate.py` rewrites the same files."""

import json
import random
from pathlib import Path

HERE = Path(__file__).parent
rng = random.Random(7)
WORDS = ("the function returns a value when the request is valid otherwise it raises an error "
         "which the caller handles by retrying with backoff until the deadline passes and the "
         "test suite checks every branch of the parser against golden files in the repository").split()


def prose(n):
    return " ".join(rng.choice(WORDS) for _ in range(n))


def code(lines):
    return "\n".join(f"    let x{i} = compute({i}, \"{rng.choice(WORDS)}\")?; // {prose(6)}" for i in range(lines))


def tool(i):
    props = {f"arg{j}": {"type": rng.choice(["string", "integer", "boolean"]), "description": prose(12)} for j in range(5)}
    return {"name": f"tool_{i:02d}", "description": prose(40), "parameters": {"type": "object", "properties": props, "required": ["arg0"]}}


TOOLS = [tool(i) for i in range(24)]
SYSTEM = "You are a coding agent working in a large repository. " + prose(400)


def turns():
    out = []
    for t in range(30):
        call_id = f"call_{t:03d}"
        args = json.dumps({"arg0": f"src/module_{t}.rs", "arg1": t})
        result = code(26)
        out.append((prose(30), call_id, TOOLS[t % 24]["name"], args, result))
    return out


def openai():
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": prose(60)}]
    for text, call_id, name, args, result in turns():
        messages.append({"role": "assistant", "content": text, "tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}]})
        messages.append({"role": "tool", "tool_call_id": call_id, "content": result})
    messages.append({"role": "user", "content": "Now fix the failing test."})
    return {"model": "bench", "messages": messages, "tools": [{"type": "function", "function": t} for t in TOOLS], "max_tokens": 1024}


def anthropic():
    messages = [{"role": "user", "content": prose(60)}]
    for text, call_id, name, args, result in turns():
        messages.append({"role": "assistant", "content": [{"type": "text", "text": text}, {"type": "tool_use", "id": call_id, "name": name, "input": json.loads(args)}]})
        messages.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": call_id, "content": result}]})
    messages[-1]["content"].append({"type": "text", "text": "Now fix the failing test."})
    tools = [{"name": t["name"], "description": t["description"], "input_schema": t["parameters"]} for t in TOOLS]
    return {"model": "bench", "max_tokens": 1024, "system": SYSTEM, "messages": messages, "tools": tools}


for name, body in [("agentic-openai.json", openai()), ("agentic-anthropic.json", anthropic())]:
    (HERE / name).write_text(json.dumps(body))
    print(name, len(json.dumps(body)))
