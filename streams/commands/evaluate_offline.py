"""`tasksage evaluate --offline`: the prequential replay in memory (processors/evaluation/offline.py),
with the same decision code, the same report, and the learned layer of the estimate.

No broker and no database: task vectors come from the configured embedder in batches, neighbours
from an exact cosine search over the tasks already revealed, statistics from dicts. It differs from
the live replay in exact versus HNSW search and in batch boundaries; both run the learned layer
with the same code (the worker keeps its state in PostgreSQL). Visibility follows the live rules:
task i sees the outcomes of tasks < i - reveal delay, never its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from processors.embedders import create_embedder
from processors.evaluation.dataset import Dataset
from processors.evaluation.offline import Feedback, OfflineOptions, replay_offline, visible_prefix
from processors.evaluation.report import build_report
from processors.evaluation.runs import RunRecord, revealed_for
from streams.commands.evaluate_driver import ReplayOptions, run_options
from streams.settings import Settings

_BATCH = 256


async def embed_dataset(
    settings: Settings, dataset: Dataset, progress: Callable[[int, int], None] | None = None
) -> npt.NDArray[np.float32]:
    """One unit vector per task description, in dataset order, from the configured embedder."""
    embedder = create_embedder(settings.embedder_config())
    texts = [item.task.description for item in dataset.tasks]
    rows: list[Any] = []
    try:
        for start in range(0, len(texts), _BATCH):
            rows.extend(await embedder.embed(texts[start : start + _BATCH]))
            if progress is not None:
                progress(min(start + _BATCH, len(texts)), len(texts))
    finally:
        await embedder.aclose()
    matrix = np.asarray(rows, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return (matrix / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def offline_report(
    settings: Settings,
    dataset: Dataset,
    vectors: npt.NDArray[np.float32],
    targets: list[float],
    feedback: Feedback,
    reveal_delay: int,
    exploration_rate: float | None,
    keep_runs: list[RunRecord] | None = None,
    values: list[float] | None = None,
) -> dict[str, Any]:
    """One in-memory replay per target and the report built from them (as `evaluate` builds it)."""
    explore = (
        (0.0 if feedback == "full" else settings.exploration_rate)
        if exploration_rate is None
        else exploration_rate
    )
    base = settings.model_copy(update={"exploration_rate": explore})
    learned = settings.learned_config()
    visible = visible_prefix(len(dataset.tasks), reveal_delay)
    runs = []
    for setting in run_options(ReplayOptions(feedback=feedback), targets, values):
        target, value = setting.success_target, setting.success_value_usd
        config = base.model_copy(
            update={"success_target": target, "success_value_usd": value}
        ).scheduler_config()
        options = OfflineOptions(
            learning_rate=settings.learning_rate,
            feedback=feedback,
            learned=learned if learned.enabled else None,
        )
        started = time.perf_counter()
        preds = replay_offline(dataset, config, options, visible, vectors)
        runs.append(
            RunRecord(
                setting.label,
                target,
                feedback,
                tuple(preds),
                tuple(visible),
                revealed_for(dataset, feedback, [p.chosen for p in preds]),
                seconds=time.perf_counter() - started,
                use_profiles=config.use_profiles,
                learning_rate=settings.learning_rate,
                success_value_usd=value,
            )
        )
    meta = {
        "embedder": settings.embedder,
        "reveal_delay": reveal_delay,
        "targets": targets,
        "values_usd": values or [],
        "pipeline": "offline: the decision code in memory, exact neighbour search (tasksage evaluate --offline)",
        "learned_layer": learned.enabled,
        "visibility": f"task i saw the outcomes of tasks < i - {reveal_delay}, never its own",
        "run_seconds": [round(r.seconds or 0.0, 1) for r in runs],
    }
    if keep_runs is not None:
        keep_runs.extend(runs)
    main = base.model_copy(update={"success_target": targets[0]}).scheduler_config()
    return build_report(dataset, main, runs, (), meta)
