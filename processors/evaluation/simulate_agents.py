"""`tasksage simulate --profile agent-work`: the shape of coding agents run on real issue trackers.
Pure and seeded.

Shape (what routing on such data looks like, not any one benchmark):
- about two dozen arms (4 agents x 6 models), list prices log-spaced over 100x; a model's quality
  grows with its price only loosely, so a dear model is not always better;
- a dozen kinds (repositories), very uneven: the largest holds almost half of the tasks;
- success = sigmoid(arm ability + a small arm-by-repository effect - task difficulty), the
  difficulty shared by all arms and wide (sd 1.3), so outcomes of one task agree across arms and
  success rates per arm land between about 0.2 and 0.75;
- the description is the repository's vocabulary plus generic issue words; only one task in five
  carries a word that weakly follows its difficulty, so text says little beyond the kind. Similar
  descriptions therefore do not share outcomes, which is where neighbour evidence adds noise;
- cost = list price x task size (lognormal) x 1.3 on failure (a failing agent runs longer).
"""

from __future__ import annotations

import math
import random

from processors.contracts import TaskCreated
from processors.evaluation.dataset import (
    EPOCH,
    ArmSpec,
    Dataset,
    DatasetHeader,
    DatasetTask,
    Outcome,
    arm_name,
)
from processors.scheduling.types import Arm, TierOption

AGENTS = (("swe-agent", 0.0), ("openhands", 0.25), ("aider", -0.2), ("autocoder", -0.45))
MODELS = 6
REPOSITORIES = (
    ("django", 0.45, "orm queryset migration admin view template middleware"),
    ("sympy", 0.12, "expression simplify solve matrix printing series integral"),
    ("scikit-learn", 0.08, "estimator pipeline fit transform cross validation sparse"),
    ("sphinx", 0.07, "autodoc directive builder toctree napoleon extension"),
    ("matplotlib", 0.06, "axes figure colorbar legend backend artist"),
    ("pytest", 0.05, "fixture plugin assertion rewrite marker collection"),
    ("xarray", 0.04, "dataset dataarray coordinate groupby resample netcdf"),
    ("astropy", 0.04, "units table fits wcs coordinates modeling"),
    ("pylint", 0.03, "checker message astroid config linting plugin"),
    ("requests", 0.025, "session adapter redirect headers cookies proxy"),
    ("seaborn", 0.02, "plot palette facet grid distribution categorical"),
    ("flask", 0.015, "blueprint route request context config cli"),
)
GENERIC = (
    "error when calling with none argument",
    "unexpected behaviour after upgrade",
    "crash on empty input",
    "wrong result for edge case",
    "deprecation warning raised",
    "regression in latest release",
    "incorrect output formatting",
    "missing support for option",
)
MARKERS = (
    ("typo", "small", "simple"),
    ("refactor", "several", "inconsistent"),
    ("race", "design", "rewrite"),
)
DIFFICULTY_SD = 1.3
ARM_KIND_SD = 0.35
MARKER_SHARE = 0.2


def _arms(rng: random.Random) -> list[tuple[Arm, float, float]]:
    """(arm, ability, list price): prices 0.02 .. 2.0 USD per run, ability loosely tied to price."""
    out = []
    for m in range(MODELS):
        price = 0.02 * 100.0 ** (m / (MODELS - 1))
        quality = -0.9 + 1.7 * (m / (MODELS - 1)) + rng.gauss(0.0, 0.35)
        for agent, skill in AGENTS:
            out.append((Arm(agent, f"model-{m + 1}"), quality + skill + rng.gauss(0.0, 0.15), price))
    return out


def _description(rng: random.Random, vocabulary: str, difficulty: float) -> str:
    words = vocabulary.split()
    text = f"{rng.choice(GENERIC)} in {rng.choice(words)} {rng.choice(words)}"
    if rng.random() < MARKER_SHARE:
        level = 0 if difficulty < -0.7 else 2 if difficulty > 0.7 else 1
        if rng.random() < 0.5:
            level = rng.randrange(3)  # the marker itself is noisy
        text += f" ({rng.choice(MARKERS[level])})"
    return text


def generate_agent_work(tasks: int = 500, seed: int = 11) -> Dataset:
    rng = random.Random(seed)
    arms = _arms(rng)
    kind_effect = {
        (arm, repo): rng.gauss(0.0, ARM_KIND_SD) for arm, _, _ in arms for repo, _, _ in REPOSITORIES
    }
    kind_mean = {repo: rng.gauss(0.0, 0.5) for repo, _, _ in REPOSITORIES}
    weights = [w for _, w, _ in REPOSITORIES]
    items = []
    for index in range(tasks):
        repo, _, vocabulary = rng.choices(REPOSITORIES, weights)[0]
        difficulty = rng.gauss(kind_mean[repo], DIFFICULTY_SD)
        size = math.exp(rng.gauss(0.0, 0.5))
        truth: dict[Arm, float] = {}
        outcomes = []
        for arm, ability, price in arms:
            p = 1.0 / (1.0 + math.exp(-(ability + kind_effect[(arm, repo)] - difficulty)))
            truth[arm] = p
            success = rng.random() < p
            cost = price * size * (1.0 if success else 1.3)
            duration = 60_000.0 * size * (1.0 + 0.5 * math.log10(price / 0.02)) * (1.0 if success else 1.4)
            outcomes.append(Outcome(arm, success, round(duration, 1), round(cost, 8)))
        task_id = f"agent-{index:06d}"
        items.append(
            DatasetTask(
                TaskCreated(
                    event_id=f"eval-task:{task_id}",
                    occurred_at=EPOCH,
                    task_id=task_id,
                    description=_description(rng, vocabulary, difficulty),
                    kind=repo,
                ),
                tuple(outcomes),
                truth,
            )
        )
    by_cost = sorted(arms, key=lambda a: (a[2], a[0]))
    header = DatasetHeader(
        name=f"agent-work-{tasks}-seed{seed}",
        description=(
            f"{len(arms)} agent/model arms with prices 100x apart, {len(REPOSITORIES)} uneven repositories, "
            "descriptions that carry little beyond the repository"
        ),
        source="tasksage simulate --profile agent-work (processors/evaluation/simulate_agents.py)",
        attribution="synthetic data generated by tasksage",
        arms=tuple(ArmSpec(a, price, None, arm_name(a)) for a, _, price in by_cost),
        tiers=tuple(TierOption("*", i, a, price) for i, (a, _, price) in enumerate(by_cost, start=1)),
        notes=(
            f"seed {seed}: success = sigmoid(arm ability + arm-by-repository effect (sd {ARM_KIND_SD:g}) "
            f"- difficulty (sd {DIFFICULTY_SD:g}))",
        ),
    )
    return Dataset(header, tuple(items))
