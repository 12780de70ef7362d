"""A seeded synthetic message corpus with semantic structure, for the search benchmark and tests.

Real chat has structure an embedding model sees: messages of one thread repeat its words,
threads of one topic share a vocabulary, and a few chat words ("thanks", "any update") appear
everywhere. The generator reproduces that hierarchy: topic -> thread -> message, each message
keeping about three quarters of its thread's words plus some topic words and chat filler. Under
the hashing embedder, messages of a thread then score about 0.5-0.7, of a topic 0.2-0.4, and
unrelated ones 0.0 +- 0.06, a spread much like real sentence embeddings.

A corpus without that structure (uniform random words) is the worst case of approximate search:
every point is about equally far from every other, so the exact top 10 is decided by noise that
no graph index can follow. `tasksage bench-search --corpus uniform` measures that case too.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from typing import Literal

CorpusShape = Literal["topics", "uniform"]
_FILLER = [
    "thanks",
    "please",
    "still",
    "again",
    "looks",
    "like",
    "any",
    "update",
    "on",
    "this",
    "is",
    "it",
    "ok",
    "we",
    "see",
    "the",
    "same",
    "issue",
    "here",
    "can",
    "you",
    "check",
]
# Where messages come from, with their shares: "pager" and "audit" are rare on purpose, so
# filtered searches on them need oversampling (or, for "audit", an exact scan).
SOURCES: tuple[tuple[str, float], ...] = (("chat", 0.70), ("email", 0.245), ("pager", 0.05), ("audit", 0.005))


@dataclass(frozen=True, slots=True)
class CorpusShapeConfig:
    topics: int = 200
    threads_per_topic: int = 40
    vocabulary: int = 30_000
    topic_words: int = 30
    thread_topic_words: int = 6  # words a thread takes from its topic
    thread_own_words: int = 6  # words only (mostly) this thread uses
    keep: float = 0.75  # share of the thread's words a message repeats


@dataclass(frozen=True, slots=True)
class SyntheticMessage:
    message_id: str
    text: str
    source: str
    author: str
    topic: int
    thread: int


class Corpus:
    """Deterministic for a given seed: the same vocabulary, topics and threads every time."""

    def __init__(
        self, seed: int = 7, shape: CorpusShape = "topics", config: CorpusShapeConfig | None = None
    ) -> None:
        self.shape = shape
        self.config = config or CorpusShapeConfig()
        c = self.config
        rng = random.Random(seed)
        self.vocabulary = [
            "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(4, 9)))
            for _ in range(c.vocabulary)
        ]
        self.topic_vocabulary = [
            [rng.choice(self.vocabulary) for _ in range(c.topic_words)] for _ in range(c.topics)
        ]
        self.threads = [
            (
                topic,
                [rng.choice(self.topic_vocabulary[topic]) for _ in range(c.thread_topic_words)]
                + [rng.choice(self.vocabulary) for _ in range(c.thread_own_words)],
            )
            for topic in range(c.topics)
            for _ in range(c.threads_per_topic)
        ]

    def messages(self, count: int, seed: int, prefix: str = "m") -> list[SyntheticMessage]:
        rng = random.Random(seed)
        names, weights = zip(*SOURCES, strict=True)
        out = []
        for i in range(count):
            thread = rng.randrange(len(self.threads))
            topic, words = self.threads[thread]
            text = (
                self._uniform_text(rng) if self.shape == "uniform" else self._thread_text(rng, topic, words)
            )
            out.append(
                SyntheticMessage(
                    message_id=f"{prefix}{i:07d}",
                    text=text,
                    source=rng.choices(names, weights)[0],
                    author=f"user{rng.randrange(500)}",
                    topic=topic,
                    thread=thread,
                )
            )
        return out

    def _thread_text(self, rng: random.Random, topic: int, words: list[str]) -> str:
        c = self.config
        chosen = [w for w in words if rng.random() < c.keep]
        chosen += [rng.choice(self.topic_vocabulary[topic]) for _ in range(rng.randint(1, 4))]
        chosen += [rng.choice(_FILLER) for _ in range(rng.randint(0, 3))]
        rng.shuffle(chosen)
        return " ".join(chosen)

    def _uniform_text(self, rng: random.Random) -> str:
        return " ".join(rng.choice(self.vocabulary) for _ in range(rng.randint(6, 18)))
