"""Runbooks (docs/runbooks/*.md) retrieved by keyword score, no vector database.

A runbook is Markdown: a `# Title`, an optional `Keywords: a, b, c` line, then the steps. The score of a
runbook for a query is BM25 over its words, with title and keyword words counted three times (they say
what the runbook is for). Alert names are split into words (`PipewatchWorkerDown` -> pipewatch worker
down), so an alert's name finds its runbook. 20 runbooks load and score in well under a millisecond each.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from django.conf import settings

WORD = re.compile(r"[a-z0-9]+")
CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "in",
        "is",
        "it",
        "of",
        "on",
        "or",
        "the",
        "to",
        "this",
        "that",
        "with",
        "when",
        "what",
    ]
)
HEADER_WEIGHT = 3
K1, B = 1.2, 0.75


def words(text: str) -> list[str]:
    return [word for word in WORD.findall(CAMEL.sub(" ", text).lower().replace("_", " ")) if word not in STOP]


@dataclass(frozen=True)
class Runbook:
    name: str
    title: str
    text: str
    terms: Counter[str]
    length: int


@dataclass(frozen=True)
class Match:
    runbook: Runbook
    score: float


def _load(path: Path) -> Runbook:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    title = next((line.lstrip("# ").strip() for line in lines if line.startswith("#")), path.stem)
    keywords = next((line.split(":", 1)[1] for line in lines if line.lower().startswith("keywords:")), "")
    terms = Counter(words(text))
    for word in words(f"{title} {keywords} {path.stem}"):
        terms[word] += HEADER_WEIGHT
    return Runbook(path.stem, title, text, terms, sum(terms.values()))


@lru_cache(maxsize=4)
def _library(directory: str, mtimes: tuple[float, ...]) -> tuple[Runbook, ...]:
    return tuple(_load(path) for path in sorted(Path(directory).glob("*.md")))


def library(directory: Path | None = None) -> tuple[Runbook, ...]:
    """Every runbook; re-read when a file changes (the cache key has their modification times)."""
    folder = Path(directory or settings.INSIGHT_RUNBOOK_DIR)
    paths = sorted(folder.glob("*.md")) if folder.is_dir() else []
    return _library(str(folder), tuple(path.stat().st_mtime for path in paths))


def search(query: str, limit: int = 3, directory: Path | None = None) -> list[Match]:
    """The best `limit` runbooks for the query's words, best first; runbooks sharing no word are left out."""
    books = library(directory)
    if not books:
        return []
    query_terms = set(words(query))
    average = sum(book.length for book in books) / len(books)
    matches = []
    for book in books:
        score = 0.0
        for term in query_terms:
            frequency = book.terms.get(term, 0)
            if not frequency:
                continue
            having = sum(1 for other in books if term in other.terms)
            idf = math.log(1 + (len(books) - having + 0.5) / (having + 0.5))
            score += idf * frequency * (K1 + 1) / (frequency + K1 * (1 - B + B * book.length / average))
        if score > 0:
            matches.append(Match(book, round(score, 3)))
    return sorted(matches, key=lambda match: (-match.score, match.runbook.name))[:limit]
