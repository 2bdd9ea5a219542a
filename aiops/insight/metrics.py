"""insight's Prometheus metrics: how explanations go (source, outcome) and how long they take."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

INSIGHTS = Counter(
    "pipewatch_insights_total",
    "Explanations written, by source (rules, llm) and outcome (answered, or the LLM error kind).",
    ["source", "outcome"],
)
# Rules answer in ~60 ms; a local model on 2 cores in 10-60 s.
INSIGHT_SECONDS = Histogram(
    "pipewatch_insight_seconds",
    "Time to an explanation, by source.",
    ["source"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300),
)
