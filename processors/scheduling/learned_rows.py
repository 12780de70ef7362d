"""The learned layer's state as rows of `learned_models` (processors/postgres/learned_models.py),
and back. Pure: exact float64 bytes, so restore(store(s)) == s and a worker that reloads the
layer predicts exactly as the one that wrote it."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from processors.scheduling import online_logistic as ol
from processors.scheduling.learned import LearnedConfig, LearnedState, initial_state
from processors.scheduling.text_length import LengthCentre
from processors.scheduling.types import Arm

# Storage rows: (component, agent, model) -> (dimension, count, state bytes). Components: "stacker",
# "text_all" and "text_length" (the length coordinate's centre; agent and model empty), and
# "text_arm" and "length_arm" (one row per arm).
StoredRows = dict[tuple[str, str, str], tuple[int, int, bytes]]


def store(state: LearnedState, arms: Iterable[Arm] | None = None) -> StoredRows:
    """The state as rows for the database (exact float64 bytes: restore(store(s)) == s).

    With `arms`, what a batch whose outcomes taught those arms' text models changed: the stacker,
    those arms' text models, and the shared text model only if there is any (an outcome that
    teaches the text models teaches both). A text model is over a megabyte at dimension 384."""
    wanted = None if arms is None else set(arms)
    rows: StoredRows = {("stacker", "", ""): _row(state.stacker)}
    if state.text_all is not None and (wanted is None or wanted):
        rows[("text_all", "", "")] = _row(state.text_all)
        if state.length is not None:  # moves with every outcome that teaches the text models
            rows[("text_length", "", "")] = state.length.to_row()
    for component, models in (("text_arm", state.text_arm), ("length_arm", state.length_arm)):
        for arm, model in sorted(models.items()):
            if wanted is None or arm in wanted:
                rows[(component, arm.agent, arm.model)] = _row(model)
    return rows


def restore(rows: StoredRows, config: LearnedConfig) -> LearnedState:
    """The state from stored rows; missing components start from their priors."""
    fresh = initial_state(config)

    def load(key: tuple[str, str, str], default: ol.LogisticState | None) -> ol.LogisticState | None:
        row = rows.get(key)
        return default if row is None else ol.LogisticState.from_bytes(row[2], row[0], row[1])

    def per_arm(wanted: str, dimension: int) -> dict[Arm, ol.LogisticState]:
        return {
            Arm(agent, model): ol.LogisticState.from_bytes(data, dim, count)
            for (component, agent, model), (dim, count, data) in rows.items()
            if component == wanted and dim == dimension
        }

    stored = load(("stacker", "", ""), fresh.stacker)
    assert stored is not None
    stacker = _grown(stored, fresh.stacker)
    text_all = load(("text_all", "", ""), fresh.text_all) if config.text_dimension > 0 else None
    arms = per_arm("text_arm", config.text_dimension)
    if fresh.length is None:
        return LearnedState(stacker, text_all, arms)
    length_row = rows.get(("text_length", "", ""))
    length = fresh.length if length_row is None else LengthCentre.from_row(length_row)
    return LearnedState(stacker, text_all, arms, length, per_arm("length_arm", 1))


def _grown(stored: ol.LogisticState, fresh: ol.LogisticState) -> ol.LogisticState:
    """A stacker stored by a release with fewer sources (FEATURES only ever grows at its end): the
    weights it learned, and the prior of the sources added since."""
    learned = stored.dimension
    if learned >= fresh.dimension:
        return stored
    cov = fresh.cov.copy()
    cov[:learned, :learned] = stored.cov
    return ol.LogisticState(np.concatenate([stored.mean, fresh.mean[learned:]]), cov, stored.count)


def _row(model: ol.LogisticState) -> tuple[int, int, bytes]:
    return model.dimension, model.count, model.to_bytes()
