"""One small LLM client over the `openai` package, for any OpenAI-compatible server (Ollama's /v1, vLLM,
llama.cpp's server, a hosted API). Off unless INSIGHT_LLM_URL is set.

What it guards against, in the order a call meets it:
1. the circuit breaker (Redis, shared by every worker): after INSIGHT_LLM_CIRCUIT_FAILURES consecutive
   transient failures no call is made for INSIGHT_LLM_CIRCUIT_OPEN_SECONDS (the rules answer meanwhile);
2. the hourly call budget (Redis counter per clock hour, every HTTP call counts, retries and repairs too);
3. the timeout per call, and retries (INSIGHT_LLM_RETRIES, short backoff) on transient errors only:
   timeouts, connection errors, 5xx, 429, a garbled protocol body. A 4xx is permanent: no retry;
4. the response size limit (Content-Length checked before the body is read, the body after);
5. the answer: JSON validated against the schema; one repair request quoting the error, then rejected.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import openai
import redis
from django.conf import settings
from openai.types.chat import ChatCompletionMessageParam

from core.redis import redis_client

from .schema import ANSWER_SCHEMA, Answer, AnswerError, parse

logger = logging.getLogger(__name__)
PREFIX = "pipewatch:insight:llm"


class LLMError(Exception):
    """The LLM gave no usable answer. `kind` names why (for the Insight row and the metrics)."""

    kind = "error"


class LLMDisabledError(LLMError):
    kind = "disabled"


class LLMCircuitOpenError(LLMError):
    kind = "circuit_open"


class LLMBudgetExhaustedError(LLMError):
    kind = "budget"


class LLMTransientError(LLMError):
    kind = "transient"


class LLMPermanentError(LLMError):
    kind = "permanent"


class LLMResponseTooLargeError(LLMError):
    kind = "too_large"


class LLMAnswerRejectedError(LLMError):
    kind = "rejected"


@dataclass(frozen=True)
class LLMConfig:
    url: str
    model: str
    api_key: str
    timeout: float
    retries: int
    max_response_bytes: int
    max_tokens: int
    circuit_failures: int
    circuit_open_seconds: int
    hourly_budget: int

    @property
    def enabled(self) -> bool:
        return bool(self.url and self.model)

    @classmethod
    def from_settings(cls, **overrides: Any) -> LLMConfig:
        values = {
            "url": settings.INSIGHT_LLM_URL,
            "model": settings.INSIGHT_LLM_MODEL,
            "api_key": settings.INSIGHT_LLM_API_KEY,
            "timeout": settings.INSIGHT_LLM_TIMEOUT_SECONDS,
            "retries": settings.INSIGHT_LLM_RETRIES,
            "max_response_bytes": settings.INSIGHT_LLM_MAX_RESPONSE_BYTES,
            "max_tokens": settings.INSIGHT_LLM_MAX_TOKENS,
            "circuit_failures": settings.INSIGHT_LLM_CIRCUIT_FAILURES,
            "circuit_open_seconds": settings.INSIGHT_LLM_CIRCUIT_OPEN_SECONDS,
            "hourly_budget": settings.INSIGHT_LLM_HOURLY_BUDGET,
        }
        return cls(**(values | overrides))


@dataclass(frozen=True)
class LLMResult:
    answer: Answer
    model: str
    calls: int
    repaired: bool
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float


class CircuitBreaker:
    """Consecutive transient failures open it; after the cool-down one call may try (half-open)."""

    def __init__(self, failures: int, open_seconds: int, client: redis.Redis | None = None) -> None:
        self.failures, self.open_seconds = failures, open_seconds
        self.client = client or redis_client()

    def check(self) -> None:
        remaining = float(self.client.get(f"{PREFIX}:open_until") or 0) - time.time()
        if remaining > 0:
            raise LLMCircuitOpenError(f"LLM circuit open for {remaining:.0f} s more")

    def is_open(self) -> bool:
        return float(self.client.get(f"{PREFIX}:open_until") or 0) > time.time()

    def record_success(self) -> None:
        self.client.delete(f"{PREFIX}:failures", f"{PREFIX}:open_until")

    def record_failure(self) -> None:
        count = int(self.client.incr(f"{PREFIX}:failures"))
        self.client.expire(f"{PREFIX}:failures", 24 * 3600)
        if count >= self.failures:
            self.client.set(f"{PREFIX}:open_until", time.time() + self.open_seconds, ex=self.open_seconds * 10)
            logger.warning("LLM circuit opened after %d consecutive failures", count)


class HourlyBudget:
    """At most `limit` calls per clock hour (UTC), counted atomically in Redis across workers."""

    def __init__(self, limit: int, client: redis.Redis | None = None) -> None:
        self.limit = limit
        self.client = client or redis_client()

    def key(self) -> str:
        return f"{PREFIX}:budget:{int(time.time() // 3600)}"

    def used(self) -> int:
        return int(self.client.get(self.key()) or 0)

    def take(self) -> None:
        key = self.key()
        used = int(self.client.incr(key))
        self.client.expire(key, 7200)
        if self.limit and used > self.limit:
            raise LLMBudgetExhaustedError(f"hourly LLM budget of {self.limit} calls used")


REPAIR = (
    "Your reply was not valid for the required JSON schema ({error}). Reply again with only one JSON object "
    "with the keys summary, likely_cause, cause_code, checks (a list of strings) and confidence "
    "(low, medium or high), and nothing else."
)
TRANSIENT = (openai.APITimeoutError, openai.APIConnectionError, openai.InternalServerError, openai.RateLimitError)


class LLMClient:
    def __init__(self, config: LLMConfig | None = None, client: redis.Redis | None = None) -> None:
        self.config = config or LLMConfig.from_settings()
        self.breaker = CircuitBreaker(self.config.circuit_failures, self.config.circuit_open_seconds, client)
        self.budget = HourlyBudget(self.config.hourly_budget, client)
        self._openai: openai.OpenAI | None = None

    def _client(self) -> openai.OpenAI:
        if self._openai is None:
            limit = self.config.max_response_bytes

            def check_size(response: Any) -> None:
                length = int(response.headers.get("content-length") or 0)
                if length > limit:
                    raise LLMResponseTooLargeError(f"response of {length} bytes exceeds {limit}")

            self._openai = openai.OpenAI(
                base_url=self.config.url,
                # Ollama and llama.cpp ignore the key, but the package wants one.
                api_key=self.config.api_key or "not-needed",
                timeout=self.config.timeout,
                max_retries=0,  # ours below: transient errors only, and every call counts against the budget
                http_client=openai.DefaultHttpx2Client(
                    timeout=self.config.timeout, event_hooks={"response": [check_size]}
                ),
            )
        return self._openai

    def explain(self, system: str, user: str) -> LLMResult:
        """Ask for the structured answer; repair once if it does not conform. Raises LLMError subclasses."""
        if not self.config.enabled:
            raise LLMDisabledError("no LLM configured (INSIGHT_LLM_URL / INSIGHT_LLM_MODEL)")
        started = time.perf_counter()
        messages: list[ChatCompletionMessageParam] = [
            {"role": "system", "content": system},
            {"role": "user", "content": user},
        ]
        usage = [0, 0]
        calls = 0
        text, model, made = self._complete(messages, usage)
        calls += made
        try:
            answer = parse(text)
            repaired = False
        except AnswerError as first:
            logger.info("LLM answer did not conform (%s); asking once to repair it", first)
            messages += [
                {"role": "assistant", "content": text},
                {"role": "user", "content": REPAIR.format(error=first)},
            ]
            text, model, made = self._complete(messages, usage)
            calls += made
            try:
                answer = parse(text)
            except AnswerError as second:
                raise LLMAnswerRejectedError(f"answer rejected after one repair: {second}") from second
            repaired = True
        return LLMResult(answer, model, calls, repaired, usage[0], usage[1], (time.perf_counter() - started) * 1000)

    def _complete(self, messages: list[ChatCompletionMessageParam], usage: list[int]) -> tuple[str, str, int]:
        """One chat completion with retries on transient errors; returns (content, model, HTTP calls made)."""
        last: Exception | None = None
        for attempt in range(self.config.retries + 1):
            if attempt:
                time.sleep(min(0.5 * 2 ** (attempt - 1), 4.0))
            self.breaker.check()
            self.budget.take()
            try:
                response = self._client().chat.completions.create(
                    model=self.config.model,
                    messages=messages,
                    temperature=0,
                    max_tokens=self.config.max_tokens,
                    response_format={"type": "json_object"},
                )
                content = response.choices[0].message.content or ""
            except TRANSIENT as exc:
                if isinstance(exc.__cause__, LLMResponseTooLargeError):
                    raise exc.__cause__ from None  # our size check, raised inside the HTTP client
                last = exc
                self.breaker.record_failure()
                logger.warning("LLM call %d failed (%s); transient", attempt + 1, type(exc).__name__)
                continue
            except (openai.APIResponseValidationError, ValueError, IndexError, AttributeError) as exc:
                # a 200 whose body is not a chat completion (garbled JSON, a proxy's HTML page): transient
                last = exc
                self.breaker.record_failure()
                logger.warning("LLM call %d returned no chat completion (%s)", attempt + 1, type(exc).__name__)
                continue
            except openai.APIStatusError as exc:
                raise LLMPermanentError(f"LLM server refused the request: HTTP {exc.status_code}") from exc
            self.breaker.record_success()
            if len(content.encode()) > self.config.max_response_bytes:
                raise LLMResponseTooLargeError(f"answer of {len(content.encode())} bytes exceeds the limit")
            if response.usage:
                usage[0] += response.usage.prompt_tokens or 0
                usage[1] += response.usage.completion_tokens or 0
            return content, response.model or self.config.model, attempt + 1
        raise LLMTransientError(f"LLM failed {self.config.retries + 1} times: {type(last).__name__}: {last}") from last


def schema_text() -> str:
    """The schema as the prompt shows it."""
    return json.dumps(ANSWER_SCHEMA, separators=(",", ":"))
