"""The structured answer every explainer gives, its JSON schema and its validation.

The same shape comes from the rules and from an LLM; an LLM's answer is untrusted text: it is validated
against the schema (lengths bounded), control characters are stripped, and it is only ever shown as
escaped text (`as_html`, `as_slack`): never executed, never turned into a link.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

import jsonschema

# Causes the rules know; an LLM may also answer "other". Used to score explainers against known faults.
CAUSES = (
    "leak",
    "burst",
    "sensor_stuck",
    "sensor_offline",
    "bridge_or_network",
    "host_resource",
    "worker_or_broker_down",
    "kipris_quota",
    "kipris_circuit",
    "suspicious_account",
    "other",
)
CONFIDENCE = ("low", "medium", "high")

ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["summary", "likely_cause", "checks", "confidence"],
    "properties": {
        "summary": {"type": "string", "minLength": 1, "maxLength": 600},
        "likely_cause": {"type": "string", "minLength": 1, "maxLength": 300},
        "cause_code": {"type": "string", "enum": list(CAUSES)},
        "checks": {
            "type": "array",
            "minItems": 1,
            "maxItems": 6,
            "items": {"type": "string", "minLength": 1, "maxLength": 240},
        },
        "confidence": {"type": "string", "enum": list(CONFIDENCE)},
    },
}
_VALIDATOR = jsonschema.Draft202012Validator(ANSWER_SCHEMA)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class AnswerError(ValueError):
    """The text is not a conforming answer (not JSON, or not the schema); the message says why."""


@dataclass(frozen=True)
class Answer:
    summary: str
    likely_cause: str
    checks: list[str]
    confidence: str
    cause_code: str = "other"
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("extra")
        return data

    def as_html(self) -> str:
        """For a web page: every piece escaped; checks as a list; no links are made from the text."""
        checks = "".join(f"<li>{html.escape(check)}</li>" for check in self.checks)
        return (
            f"<p>{html.escape(self.summary)}</p><p><strong>Likely cause:</strong> {html.escape(self.likely_cause)}"
            f" ({html.escape(self.confidence)} confidence)</p><ol>{checks}</ol>"
        )

    def as_slack(self) -> str:
        """For a Slack message: &, < and > escaped (Slack turns <…> into links and mentions)."""

        def esc(text: str) -> str:
            return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

        checks = "; ".join(esc(check) for check in self.checks)
        return f"{esc(self.summary)} Likely cause: {esc(self.likely_cause)} ({self.confidence}). Check: {checks}"

    def map_text(self, change: Any) -> Answer:
        """The same answer with `change(str) -> str` applied to every text (redaction restore)."""
        return Answer(
            summary=change(self.summary),
            likely_cause=change(self.likely_cause),
            checks=[change(check) for check in self.checks],
            confidence=self.confidence,
            cause_code=self.cause_code,
        )


def _clean(text: str) -> str:
    return _CONTROL.sub("", text).strip()


def validate(data: Any) -> Answer:
    """A parsed object -> Answer, or AnswerError naming the first schema violation."""
    errors = sorted(_VALIDATOR.iter_errors(data), key=lambda error: list(error.path))
    if errors:
        error = errors[0]
        where = "/".join(str(part) for part in error.path) or "answer"
        raise AnswerError(f"{where}: {error.message[:200]}")
    return Answer(
        summary=_clean(data["summary"]),
        likely_cause=_clean(data["likely_cause"]),
        checks=[_clean(check) for check in data["checks"]],
        confidence=data["confidence"],
        cause_code=data.get("cause_code", "other"),
    )


def parse(text: str) -> Answer:
    """An LLM's text -> Answer. Tolerates a ```json fence around the object (small models add one)."""
    body = text.strip()
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", body, flags=re.DOTALL)
    if fenced:
        body = fenced.group(1)
    try:
        data = json.loads(body)
    except json.JSONDecodeError as exc:
        raise AnswerError(f"not JSON: {exc.msg} at character {exc.pos}") from exc
    return validate(data)
