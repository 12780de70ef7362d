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
    """The state from stored rows. A component that does not fit the configuration starts from its
    prior, as a missing one does: a changed text dimension starts the text models afresh (their rows
    are overwritten at the next outcome), and a stacker of a release with fewer sources is grown."""
    fresh = initial_state(config)

    def model(row: tuple[int, int, bytes]) -> ol.LogisticState:
        return ol.LogisticState.from_bytes(row[2], row[0], row[1])

    def fitting(component: str, dimension: int) -> dict[Arm, ol.LogisticState]:
        return {
            Arm(agent, name): model(row)
            for (kind, agent, name), row in rows.items()
            if kind == component and row[0] == dimension > 0
        }

    stacker_row = rows.get(("stacker", "", ""))
    stacker = fresh.stacker
    if stacker_row is not None and 0 < stacker_row[0] <= stacker.dimension:
        stacker = _grown(model(stacker_row), fresh.stacker)
    text_row = rows.get(("text_all", "", ""))
    text_all = fresh.text_all
    if text_row is not None and text_row[0] == config.text_dimension > 0:
        text_all = model(text_row)
    arms = fitting("text_arm", config.text_dimension)
    length_row = rows.get(("text_length", "", ""))
    if fresh.length is None:
        return LearnedState(stacker, text_all, arms)
    length = fresh.length if length_row is None or length_row[0] != 1 else LengthCentre.from_row(length_row)
    return LearnedState(stacker, text_all, arms, length, fitting("length_arm", 1))


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
