"""Types shared by every part of `core.nlp`: the error, spans, answers, summaries, progress callbacks.

The encoder, QA and summaries import these from here and never from each other's entry points,
so `core.nlp` has no import circle.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

Progress = Callable[[float, str], None]  # (fraction done 0..1, what is happening)


class NLPError(ValueError):
    """Input or a model the NLP tools can't use; the message says what was wrong and what to do."""


@dataclass(frozen=True)
class Span:
    """A piece of a text: character offsets [start, end) and a score."""

    start: int
    end: int
    score: float
    text: str


@dataclass(frozen=True)
class Answer:
    """An answer with its place in the context: `context[start:end] == text`."""

    text: str
    start: int
    end: int
    score: float  # cosine similarity (embeddings) or span probability (a QA model)
    method: str  # which method produced it, in words
    found: bool = True  # False when a QA model's no-answer score wins
    candidates: tuple[Span, ...] = ()  # the best-ranked spans, best first
    sentence: tuple[int, int] | None = None  # the sentence holding the answer, when narrowed to a clause
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Summary:
    """A summary; for extractive methods also every sentence's score and which were kept."""

    text: str
    method: str
    sentences: tuple[Span, ...] = ()  # each sentence of the document with its centrality
    kept: tuple[int, ...] = ()  # indices into `sentences`, in document order
    warnings: tuple[str, ...] = ()
    chunks: int = 1  # how many pieces a long document was cut into for a model
