"""A local LLM server for tests, the benchmark and `make run` demos: it speaks OpenAI's chat-completions
protocol (`POST /v1/chat/completions`, `GET /v1/models`) and Ollama's (`POST /api/chat`, `GET /api/tags`,
`GET /api/version`; Ollama also serves the OpenAI protocol under /v1, and so does this server).

It is no model: its answer is the "first opinion" the prompt carries (the rule-based answer between
FIRST_OPINION markers), or a fixed answer. Faults are scripted per request, in order:
`ok`, `slow:<seconds>`, `error:<status>`, `garbled` (a 200 whose body is not JSON), `not_json` (content is
prose), `nonconforming` (JSON missing keys), `html` (a conforming answer full of markup and script),
`huge` (a body larger than any sane limit). An empty script answers `ok`.
"""

from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FIRST_OPINION = re.compile(r"<<FIRST_OPINION>>(.*?)<<END_FIRST_OPINION>>", re.DOTALL)
FIXED = {
    "summary": "Several events share one cause.",
    "likely_cause": "Unknown from this evidence.",
    "cause_code": "other",
    "checks": ["Look at the member events in order of their start."],
    "confidence": "low",
}
HTML_ANSWER = {
    "summary": '<script>alert("x")</script><img src=x onerror=alert(1)> Flow rose at night.',
    "likely_cause": "<a href='http://evil.example/'>click</a> a leak",
    "cause_code": "leak",
    "checks": ["<b>run</b> `rm -rf /` (never executed)", "javascript:alert(1)"],
    "confidence": "medium",
}


@dataclass
class SimulatorState:
    api_key: str = ""  # "" accepts any key (Ollama); else Bearer must match (OpenAI)
    flavour: str = "openai"
    model: str = "sim-model"
    script: list[str] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_mode(self) -> str:
        with self.lock:
            return self.script.pop(0) if self.script else "ok"


def answer_content(messages: list[dict[str, Any]], mode: str) -> str:
    if mode == "not_json":
        return "The flow rose at night, probably a leak. Check the valves."
    if mode == "nonconforming":
        return json.dumps({"summary": "Something happened.", "confidence": "very"})
    if mode == "html":
        return json.dumps(HTML_ANSWER)
    prompt = "\n".join(str(message.get("content", "")) for message in messages if message.get("role") == "user")
    match = FIRST_OPINION.search(prompt)
    if match:
        try:
            opinion = json.loads(match.group(1))
        except json.JSONDecodeError:
            opinion = FIXED
        return json.dumps(opinion)
    return json.dumps(FIXED)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: Any) -> None:
        self._send(status, json.dumps(payload).encode())

    def do_GET(self) -> None:
        state = self.server.state
        if self.path == "/v1/models":
            self._json(200, {"object": "list", "data": [{"id": state.model, "object": "model", "owned_by": "sim"}]})
        elif self.path == "/api/tags":
            self._json(200, {"models": [{"name": state.model, "model": state.model, "size": 0}]})
        elif self.path == "/api/version":
            self._json(200, {"version": "0.0.0-simulator"})
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self) -> None:
        state = self.server.state
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except json.JSONDecodeError:
            self._json(400, {"error": {"message": "invalid JSON body", "type": "invalid_request_error"}})
            return
        with state.lock:
            state.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization", "")})
        if state.api_key and self.headers.get("Authorization") != f"Bearer {state.api_key}":
            self._json(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}})
            return
        if self.path not in {"/v1/chat/completions", "/api/chat"}:
            self._json(404, {"error": "not found"})
            return
        mode = state.next_mode()
        if mode.startswith("slow:"):
            time.sleep(float(mode.split(":", 1)[1]))
            mode = "ok"
        if mode.startswith("error:"):
            status = int(mode.split(":", 1)[1])
            self._json(status, {"error": {"message": f"simulated {status}", "type": "server_error"}})
            return
        if mode == "garbled":
            self._send(200, b'{"id": "chatcmpl-1", "choices": [ {"mess')
            return
        if mode == "huge":
            content = json.dumps({**FIXED, "summary": "x" * 600}) + " " * 2_000_000
        else:
            content = answer_content(body.get("messages", []), mode)
        model = body.get("model") or state.model
        prompt_tokens = sum(len(str(m.get("content", ""))) for m in body.get("messages", [])) // 4
        completion_tokens = len(content) // 4
        if self.path == "/api/chat":
            self._json(
                200,
                {
                    "model": model,
                    "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "message": {"role": "assistant", "content": content},
                    "done": True,
                    "done_reason": "stop",
                    "prompt_eval_count": prompt_tokens,
                    "eval_count": completion_tokens,
                },
            )
            return
        completion: dict[str, Any] = {
            "id": f"chatcmpl-{len(state.requests)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        if state.flavour == "ollama":
            completion["system_fingerprint"] = "fp_ollama"
        self._json(200, completion)

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read `state.requests`
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: SimulatorState) -> None:
        super().__init__(address, _Handler)
        self.state = state


def start_server(state: SimulatorState, host: str = "127.0.0.1", port: int = 0) -> tuple[_Server, str]:
    """Serve in a daemon thread; returns the server (shutdown() it) and its OpenAI base URL."""
    server = _Server((host, port), state)
    threading.Thread(target=server.serve_forever, daemon=True, name="llm-simulator").start()
    return server, f"http://{host}:{server.server_address[1]}/v1"
