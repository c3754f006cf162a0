"""OpenTelemetry traces from the real sidecar into an OTLP/HTTP receiver that decodes with the
OpenTelemetry proto definitions: a streamed call that fails over, its span and one child per
attempt, GenAI attributes, the pod as resource, the caller's traceparent continued upstream,
no prompt anywhere; and a receiver that is down costs the call nothing."""

import json
import os
import subprocess
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from conftest import bin_dir, free_port, free_ports, wait_ready

PROMPT = "a secret prompt that must never be traced"
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"


def serve(handler):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def receiver(spans):
    class Receiver(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers["content-length"]))
            req = trace_service_pb2.ExportTraceServiceRequest()
            req.ParseFromString(body)
            spans.append((self.path, self.headers.get("content-type"), req))
            self.send_response(200)
            self.send_header("content-type", "application/x-protobuf")
            self.end_headers()
            self.wfile.write(trace_service_pb2.ExportTraceServiceResponse().SerializeToString())

    return serve(Receiver)


def upstream(seen):
    """OpenAI's chat completions, streamed: enough of the API for the steady backend."""

    class Upstream(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers["content-length"]))
            seen.append(dict(self.headers))
            chunks = [{"role": "assistant", "content": ""}, {"content": "traced answer"}]
            events = [{"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt", "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in chunks]
            events.append({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            events.append({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "gpt", "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}})
            body = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

    return serve(Upstream)


def start_sidecar(endpoint, upstream_port, workdir):
    config = Path(workdir) / "switchyard.yaml"
    config.write_text(f"""
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {{name: flaky}}
spec: {{type: mock, mock: {{failureRate: 1.0, failureStatus: 503}}}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIProvider
metadata: {{name: steady}}
spec: {{type: openai, baseUrl: "http://127.0.0.1:{upstream_port}/v1", credentials: {{env: STEADY_KEY}}}}
---
apiVersion: switchyard.dev/v1alpha1
kind: AIModel
metadata: {{name: chat}}
spec: {{backends: [{{provider: flaky, model: m1, priority: 0}}, {{provider: steady, model: gpt-4o, priority: 1}}]}}
""")
    port, admin = free_ports(2)
    env = {**os.environ, "SWITCHYARD_LISTEN": f"127.0.0.1:{port}", "SWITCHYARD_ADMIN_LISTEN": f"127.0.0.1:{admin}",
           "STEADY_KEY": "sk-steady", "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100",
           "POD_NAME": "web-7d9f", "POD_NAMESPACE": "team-a"}
    proc = subprocess.Popen([str(bin_dir() / "switchyard-sidecar"), "--config", str(config)], env=env, stderr=subprocess.DEVNULL)
    wait_ready(f"http://127.0.0.1:{admin}/readyz", proc)
    return proc, port, admin


def call(port):
    body = json.dumps({"model": "chat", "stream": True, "messages": [{"role": "user", "content": PROMPT}]}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=body, headers={
        "content-type": "application/json", "traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, r.read().decode()


def attrs(kvs):
    out = {}
    for kv in kvs:
        v = kv.value
        out[kv.key] = v.string_value if v.HasField("string_value") else v.int_value
    return out


def test_a_streamed_call_with_a_failover_is_one_span_with_a_child_per_attempt():
    spans, seen = [], []
    recv, up = receiver(spans), upstream(seen)
    with tempfile.TemporaryDirectory() as work:
        proc, port, _ = start_sidecar(f"http://127.0.0.1:{recv.server_port}", up.server_port, work)
        try:
            status, text = call(port)
            assert status == 200 and "traced answer" in text
            deadline = time.time() + 10
            while time.time() < deadline and sum(len(s.scope_spans[0].spans) for _, _, r in spans for s in r.resource_spans) < 3:
                time.sleep(0.1)
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    assert spans, "no export arrived"
    path, content_type, _ = spans[0]
    assert path == "/v1/traces" and content_type == "application/x-protobuf"
    all_spans, resources = [], []
    for _, _, req in spans:
        for rs in req.resource_spans:
            resources.append(attrs(rs.resource.attributes))
            for ss in rs.scope_spans:
                all_spans.extend(ss.spans)
    assert resources[0]["k8s.pod.name"] == "web-7d9f"
    assert resources[0]["k8s.namespace.name"] == "team-a"
    assert resources[0]["service.name"] == "switchyard-sidecar"
    call_span = next(s for s in all_spans if s.name == "chat chat")
    assert call_span.trace_id.hex() == CALLER_TRACE
    assert call_span.parent_span_id.hex() == CALLER_SPAN
    a = attrs(call_span.attributes)
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.request.model"] == "chat"
    assert a["gen_ai.response.model"] == "gpt-4o"
    assert a["gen_ai.provider.name"] == "steady"
    assert a["gen_ai.usage.input_tokens"] == 9 and a["gen_ai.usage.output_tokens"] == 2
    attempts = sorted((s for s in all_spans if s.parent_span_id == call_span.span_id), key=lambda s: s.start_time_unix_nano)
    assert [attrs(s.attributes)["gen_ai.provider.name"] for s in attempts] == ["flaky", "steady"]
    assert attrs(attempts[0].attributes)["switchyard.failover.reason"] == "server_error"
    assert attrs(attempts[0].attributes)["http.response.status_code"] == 503
    # The upstream saw the steady attempt's span as its parent, in the caller's trace.
    parent = seen[-1]["traceparent"].split("-")
    assert parent[1] == CALLER_TRACE and parent[2] == attempts[1].span_id.hex()
    everything = "".join(str(s) for s in all_spans) + str(resources)
    assert PROMPT not in everything and "sk-steady" not in everything


def test_a_receiver_that_is_down_costs_the_call_nothing():
    seen = []
    up = upstream(seen)
    with tempfile.TemporaryDirectory() as work:
        proc, port, admin = start_sidecar(f"http://127.0.0.1:{free_port()}", up.server_port, work)
        try:
            started = time.time()
            for _ in range(5):
                status, text = call(port)
                assert status == 200 and "traced answer" in text
            assert time.time() - started < 5
            deadline = time.time() + 10
            failed = 0
            while time.time() < deadline and not failed:
                with urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics") as r:
                    for line in r.read().decode().splitlines():
                        if line.startswith('switchyard_trace_exports_total{outcome="failed"}'):
                            failed = float(line.split()[-1])
                time.sleep(0.2)
            assert failed >= 1
        finally:
            proc.terminate()
            proc.wait(timeout=10)
