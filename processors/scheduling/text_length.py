"""The length coordinate of the learned layer: how long a task's text is, as the per-arm length
slopes see it (learned.py, "length_arm"). Pure.

A longer prompt is a harder task for a weak model far more than for a strong one (RouteLLM's
GSM8K: the length alone ranks the two arms at APGR 0.60, correlating -0.18 with Mixtral's success
and -0.02 with GPT-4's; on MMLU -0.08 and 0.00), and a sentence vector, normalised, does not carry
it. So each arm learns a slope in scale * ln(characters), centred on the mean over the outcomes
the layer has learned so far.

Centred because the slopes have no intercept of their own (their offset is the kind rate): an
uncentred length, nearly constant where texts are alike, would act as one per arm and move each
arm's estimate by the noise of its first outcomes (measured on the agent-work simulation, whose
texts are 31-74 characters: its value rule at 95% went from $647 to $935 with a fixed centre of
300 characters, and back to $643 centred on its own median). The running mean is part of the
learned state, updated per outcome in queue order, so a replay of the same outcomes in the same
order still reproduces the state bit for bit."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

UNKNOWN = math.nan  # the raw coordinate of a task whose length is not known: centred to 0


def raw_coordinate(chars: int | None, scale: float) -> float:
    """scale * ln(characters) (UNKNOWN without a length)."""
    return UNKNOWN if chars is None else scale * math.log(max(chars, 1))


@dataclass(frozen=True, slots=True)
class LengthCentre:
    """The mean raw length coordinate over the outcomes learned so far, and how many there were."""

    mean: float = 0.0
    count: int = 0

    def centred(self, raw: float) -> float:
        """The coordinate as the slopes see it: 0 for an unknown length, and for every length until
        the first outcome gives the mean."""
        if math.isnan(raw) or self.count == 0:
            return 0.0
        return raw - self.mean

    def after(self, raw: float) -> LengthCentre:
        """The centre once an outcome of a task with this raw coordinate is learned."""
        if math.isnan(raw):
            return self
        count = self.count + 1
        return LengthCentre(self.mean + (raw - self.mean) / count, count)

    def to_row(self) -> tuple[int, int, bytes]:
        """As a stored row: dimension 1, the count, the mean as little-endian float64."""
        return 1, self.count, np.array([self.mean], dtype="<f8").tobytes()

    @staticmethod
    def from_row(row: tuple[int, int, bytes]) -> LengthCentre:
        return LengthCentre(float(np.frombuffer(row[2], dtype="<f8")[0]), row[1])
