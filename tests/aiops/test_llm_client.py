"""The LLM client against a local server speaking OpenAI's chat-completions protocol and Ollama's."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import requests

from aiops.insight.llm import (
    LLMAnswerRejectedError,
    LLMBudgetExhaustedError,
    LLMCircuitOpenError,
    LLMClient,
    LLMConfig,
    LLMDisabledError,
    LLMPermanentError,
    LLMResponseTooLargeError,
    LLMTransientError,
)
from aiops.insight.llm_simulator import HTML_ANSWER, SimulatorState, start_server

KEY = "sk-test-0123456789abcdef"
OPINION = {
    "summary": "Night flow rose at 003.",
    "likely_cause": "A leak.",
    "cause_code": "leak",
    "checks": ["Compare the night minima."],
    "confidence": "high",
}
PROMPT = f"evidence\n<<FIRST_OPINION>>{json.dumps(OPINION)}<<END_FIRST_OPINION>>"


@pytest.fixture(params=["openai", "ollama"])
def server(request: pytest.FixtureRequest) -> Iterator[tuple[SimulatorState, str]]:
    state = SimulatorState(api_key=KEY if request.param == "openai" else "", flavour=request.param)
    httpd, url = start_server(state)
    yield state, url
    httpd.shutdown()
    httpd.server_close()


def client_for(url: str, **overrides: object) -> LLMClient:
    config = LLMConfig.from_settings(
        url=url, model="sim-model", api_key=KEY, timeout=1.0, retries=1, circuit_failures=3, hourly_budget=100
    )
    return LLMClient(LLMConfig(**{**config.__dict__, **overrides}))


def chat_calls(state: SimulatorState) -> int:
    return sum(1 for r in state.requests if r["path"] == "/v1/chat/completions")


def test_answer_comes_back_validated(server: tuple[SimulatorState, str]) -> None:
    state, url = server
    result = client_for(url).explain("system", PROMPT)
    assert result.answer.cause_code == "leak"
    assert result.answer.summary == OPINION["summary"]
    assert (result.calls, result.repaired) == (1, False)
    assert result.prompt_tokens > 0
    body = state.requests[0]["body"]
    assert body["response_format"] == {"type": "json_object"}
    assert body["temperature"] == 0


def test_ollama_native_protocol_is_served_too() -> None:
    state = SimulatorState(flavour="ollama")
    httpd, url = start_server(state)
    base = url.removesuffix("/v1")
    try:
        tags = requests.get(f"{base}/api/tags", timeout=5).json()
        assert tags["models"][0]["name"] == "sim-model"
        chat = requests.post(
            f"{base}/api/chat",
            json={"model": "sim-model", "messages": [{"role": "user", "content": PROMPT}], "stream": False},
            timeout=5,
        ).json()
        assert chat["done"] is True
        assert json.loads(chat["message"]["content"])["cause_code"] == "leak"
        # and Ollama's OpenAI-compatible layer takes any key, as Ollama does
        assert client_for(url, api_key="").explain("s", PROMPT).answer.cause_code == "leak"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_wrong_key_is_permanent_and_not_retried() -> None:
    state = SimulatorState(api_key=KEY)
    httpd, url = start_server(state)
    try:
        with pytest.raises(LLMPermanentError, match="401"):
            client_for(url, api_key="sk-wrong-key-000000").explain("s", PROMPT)
        assert chat_calls(state) == 1
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_slow_answer_times_out_and_is_retried_once(server: tuple[SimulatorState, str]) -> None:
    state, url = server
    state.script += ["slow:1.6", "slow:1.6"]
    started = time.monotonic()
    with pytest.raises(LLMTransientError, match="APITimeoutError"):
        client_for(url).explain("s", PROMPT)
    assert chat_calls(state) == 2
    assert time.monotonic() - started < 4.5  # two 1 s timeouts and one 0.5 s backoff, not the server's 3.2 s


def test_slow_answer_within_the_timeout_is_fine(server: tuple[SimulatorState, str]) -> None:
    state, url = server
    state.script.append("slow:0.3")
    assert client_for(url).explain("s", PROMPT).answer.cause_code == "leak"


def test_500_is_retried_then_succeeds(server: tuple[SimulatorState, str]) -> None:
    state, url = server
    state.script.append("error:500")
    result = client_for(url).explain("s", PROMPT)
    assert result.calls == 2
    assert chat_calls(state) == 2


def test_400_is_not_retried(server: tuple[SimulatorState, str]) -> None:
    state, url = server
    state.script.append("error:400")
    with pytest.raises(LLMPermanentError, match="400"):
        client_for(url).explain("s", PROMPT)
    assert chat_calls(state) == 1


def test_garbled_protocol_body_is_transient(server: tuple[SimulatorState, str]) -> None:
    state, url = server
    state.script += ["garbled", "garbled"]
    with pytest.raises(LLMTransientError):
        client_for(url).explain("s", PROMPT)
    assert chat_calls(state) == 2


@pytest.mark.parametrize("fault", ["nonconforming", "not_json"])
def test_bad_answer_is_repaired_once(server: tuple[SimulatorState, str], fault: str) -> None:
    state, url = server
    state.script.append(fault)
    result = client_for(url).explain("s", PROMPT)
    assert result.repaired is True
    assert result.calls == 2
    repair = state.requests[-1]["body"]["messages"]
    assert repair[-2]["role"] == "assistant"
    assert "not valid for the required JSON schema" in repair[-1]["content"]


def test_bad_answer_twice_is_rejected(server: tuple[SimulatorState, str]) -> None:
    state, url = server
    state.script += ["nonconforming", "not_json"]
    with pytest.raises(LLMAnswerRejectedError, match="after one repair"):
        client_for(url).explain("s", PROMPT)
    assert chat_calls(state) == 2


def test_markup_in_the_answer_stays_text(server: tuple[SimulatorState, str]) -> None:
    state, url = server
    state.script.append("html")
    answer = client_for(url).explain("s", PROMPT).answer
    assert answer.summary == HTML_ANSWER["summary"]  # stored as the text it is ...
    page = answer.as_html()
    assert "<script" not in page
    assert "<img" not in page
    assert "<a " not in page
    assert "&lt;script&gt;" in page
    slack = answer.as_slack()
    assert "<" not in slack
    assert ">" not in slack


def test_oversized_response_is_refused(server: tuple[SimulatorState, str]) -> None:
    state, url = server
    state.script.append("huge")
    with pytest.raises(LLMResponseTooLargeError):
        client_for(url, max_response_bytes=32_768).explain("s", PROMPT)
    assert chat_calls(state) == 1


def test_breaker_opens_after_consecutive_failures(server: tuple[SimulatorState, str]) -> None:
    state, url = server
    state.script += ["error:503"] * 4
    client = client_for(url, retries=1, circuit_failures=3)
    with pytest.raises(LLMTransientError):
        client.explain("s", PROMPT)  # failures 1 and 2
    with pytest.raises(LLMCircuitOpenError):
        client.explain("s", PROMPT)  # failure 3 opens it; the retry is refused without a call
    assert chat_calls(state) == 3
    with pytest.raises(LLMCircuitOpenError):
        client_for(url).explain("s", PROMPT)  # shared through Redis: another client (worker) sees it open
    assert chat_calls(state) == 3


def test_success_closes_the_count(server: tuple[SimulatorState, str]) -> None:
    state, url = server
    state.script += ["error:500", "ok", "error:500", "ok"]
    client = client_for(url, circuit_failures=2)
    client.explain("s", PROMPT)
    client.explain("s", PROMPT)  # two failures in all, never two in a row: still closed
    assert not client.breaker.is_open()


def test_hourly_budget_counts_every_call(server: tuple[SimulatorState, str]) -> None:
    state, url = server
    client = client_for(url, hourly_budget=3)
    state.script.append("nonconforming")
    client.explain("s", PROMPT)  # a repair: 2 calls
    client.explain("s", PROMPT)  # 3
    with pytest.raises(LLMBudgetExhaustedError):
        client.explain("s", PROMPT)
    assert chat_calls(state) == 3


def test_off_by_default() -> None:
    with pytest.raises(LLMDisabledError):
        LLMClient().explain("s", PROMPT)
