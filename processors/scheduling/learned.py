"""The learned layer of the estimate: how far to trust each source of evidence, and what the task's
text says about each arm, both learned online from revealed outcomes. Pure, no I/O.

Sources, as logits relative to the base rate b = logit(the arm's success rate over all tasks,
shrunk toward its tier prior): the simple per-(agent, model) base rate is where the layer starts
and where it stays when nothing else predicts.

    bias          1                          a shared calibration offset
    base          b                          calibration slope of the base rate itself
    kind_light    logit p_kind(m) - b        the arm's rate on the task's kind, shrunk toward b by
                                             prior_strength pseudo-counts (without a kind, on its
                                             neighbourhood: estimates.neighbourhood_totals)
    kind_fitted   logit p_kind(M) - b        the same shrunk by M pseudo-counts fitted to how far the
                                             kind's outcomes stray from the arms' global rates over
                                             all arms (empirical Bayes, m <= M <= 10 m; 10 m until
                                             the kind shows it matters): the stacker mixes the two
    neighbours    logit p_chain - logit p_kind(m)   what neighbours, shared difficulty and profiles
                                             add on top of the kind rate (estimates.py)
    text_arm      theta_arm . phi(v)         per-arm direction in vector space along which it succeeds
    text_all      theta_all . phi(v)         one direction shared by all arms (task difficulty)
    length_arm    s_arm * c                  per-arm slope in c, the task text's centred length

    p = sigmoid(b + w . features)

w is an online Bayesian logistic regression (online_logistic.py) shared by all arms. Its prior
mean puts weight 1 on kind_fitted (the kind moves the estimate as far as the spread of kinds says
it should) and 0 elsewhere; the variance is stack_prior_variance for the sources, which must earn
their weight, and the smaller calibration_prior_variance for bias and base. With no outcomes, and
on data where no source predicts anything, p is the fitted kind rate (without a kind, the
neighbourhood's, which the fitted shrinkage holds at the base rate where it strays no more than
noise); a source earns weight only as fast as outcomes show it predicts. Because w is fit by
likelihood on every revealed outcome it is also the online recalibration (bias and slope), so the
emitted probabilities stay calibrated whatever the sources do.

phi(v) is a fixed seeded Gaussian random projection of the task vector to `text_dimension`
dimensions (Johnson-Lindenstrauss: distances roughly kept, cost O(k^2) per outcome instead of
O(D^2)); at the vector's own dimension phi is the unit vector itself. c is ln(characters) of the
task's text, centred on its running mean (text_length.py): a normalised sentence vector does not
carry its length, and a longer prompt is a harder task for a weak model far more than for a strong
one. theta_arm, theta_all and s_arm are online logistic models with the kind_light logit as offset,
so they learn only what the text adds beyond the kind; with kinds withheld, what it adds beyond the
neighbourhood. The length has a model of its own, one weight per arm, rather than a coordinate
beside phi in theta_arm: alone it learns a slope from few outcomes, among 128 other weights the
same slope is lost in their noise (README, "The description's length, a slope per arm").

Prequential by construction: the features of every (task, arm) are computed when the task is
scheduled and stored with the prediction; at its outcome the stacker learns from those stored
features (never from features that saw the outcome), and the text models from their own current
prediction of it, before their update. Every update is a deterministic function of
(state, outcome), so a replay of the same outcomes in the same order gives the same state.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache

import numpy as np
from scipy.linalg import blas

from processors.scheduling import online_logistic as ol
from processors.scheduling.text_length import LengthCentre, raw_coordinate
from processors.scheduling.types import Arm

FEATURES = ("bias", "base", "kind_light", "kind_fitted", "neighbours", "text_arm", "text_all", "length_arm")
HEAVY_KIND_SHRINKAGE = 10.0  # kind_fitted: at most this many times prior_strength pseudo-counts
_PROJECTION_SEED = 20_261_204  # fixed: every worker and replay projects vectors the same way
_CALIBRATION = ("bias", "base")  # the stacker's calibration: its own, tighter prior
MAX_FEATURE = 6.0  # |feature| cap in logits: one wild source cannot swamp the others


@dataclass(frozen=True, slots=True)
class LearnedConfig:
    enabled: bool = True
    stack_prior_variance: float = 0.1  # prior variance of each source's stacking weight (1 / precision)
    # Prior variance of the bias and base weights (the calibration of the base rate). Ten times
    # tighter than the sources: the first outcomes come from few tasks, and with full feedback every
    # arm's outcome of one task shares its difficulty, so they carry far less than their count; a
    # looser prior learns a calibration slope from the first few tasks (judged by tier priors alone)
    # that then costs for the rest of the run.
    calibration_prior_variance: float = 0.01
    # The dimension the text models learn on: a seeded random projection of the task vector, or the
    # vector itself when it has exactly this many (MiniLM and the hash embedder: 384); 0 turns the
    # text models off. 128 rather than 64: with kinds withheld the text models learned the kind
    # structure from the sentence vector, and at 64 too much of it was lost (measured before the
    # neighbourhood stood in for a missing kind). 384 predicts better still where the text tells
    # the arms apart, but every outcome batch then writes k(k+1) float64 per text model it touched
    # (1.2 MB at 384, 132 kB at 128), which the execution-result stream pays for; the README's
    # "Offline results" has both measured.
    text_dimension: int = 128
    text_prior_variance: float = 1.0  # prior variance of each text-model weight
    # The length slopes' input (text_length.py): text_length_scale * ln(chars), centred on its
    # running mean; 0 leaves the length out.
    text_length_scale: float = 1.0
    # Prior mean of the stacking weights: the kind rate shrunk by the fitted strength (a kind moves
    # an arm's estimate as far as the spread of outcomes over kinds supports), and the length slope
    # (one weight whose own prior holds it at 0 until outcomes show the length matters, so it can
    # be taken at its word); every other source starts at zero and must earn its weight.
    start_weights: Mapping[str, float] = field(
        default_factory=lambda: {"kind_fitted": 1.0, "length_arm": 1.0}
    )


@dataclass(frozen=True, slots=True)
class LearnedState:
    """Everything the layer has learned: the stacker and the text models (per arm and shared)."""

    stacker: ol.LogisticState
    text_all: ol.LogisticState | None
    text_arm: Mapping[Arm, ol.LogisticState] = field(default_factory=dict)
    length: LengthCentre | None = None  # None: the length is left out
    length_arm: Mapping[Arm, ol.LogisticState] = field(default_factory=dict)  # one weight each


@dataclass(frozen=True, slots=True)
class LearnedInput:
    """What the decision needs from the learned state for one task: the stacking weights and the
    text logits per arm (arms the text model has not seen get 0)."""

    weights: tuple[float, ...]
    text_all: float = 0.0
    text_arm: Mapping[Arm, float] = field(default_factory=dict)
    length_arm: Mapping[Arm, float] = field(default_factory=dict)


def initial_state(config: LearnedConfig) -> LearnedState:
    text = ol.prior(config.text_dimension, config.text_prior_variance) if config.text_dimension > 0 else None
    start = np.array([config.start_weights.get(name, 0.0) for name in FEATURES])
    variances = np.full(len(FEATURES), config.stack_prior_variance)
    variances[[FEATURES.index(name) for name in _CALIBRATION]] = config.calibration_prior_variance
    length = LengthCentre() if text is not None and config.text_length_scale > 0 else None
    return LearnedState(ol.prior(len(FEATURES), variances, start), text, {}, length)


@cache
def _projection(source: int, target: int) -> ol.Array:
    rng = np.random.default_rng(_PROJECTION_SEED + 7919 * source + target)
    return rng.standard_normal((target, source)) / math.sqrt(target)


@cache
def _projection_transposed(source: int, target: int) -> ol.Array:
    """The projection as BLAS reads it without a copy: the transpose of the C-ordered matrix is
    Fortran-ordered, and dgemv with trans=1 multiplies by its transpose, the projection itself."""
    return _projection(source, target).T


def project(
    vector: Iterable[float] | ol.Array, config: LearnedConfig, chars: int | None = None
) -> ol.Array | None:
    """What the text models are given for a task: phi(v) (`_project`), followed, when the length is
    on, by the raw coordinate of its text length `chars` (text_length.py; the state centres it).
    None when the text models are off or the vector has no direction."""
    phi = _project(vector, config)
    if phi is None or config.text_length_scale <= 0:
        return phi
    return np.append(phi, raw_coordinate(chars, config.text_length_scale))


def _project(vector: Iterable[float] | ol.Array, config: LearnedConfig) -> ol.Array | None:
    """phi(v): the task vector, unit-normalised, projected to text_dimension (None when the text
    models are off or the vector has no direction: zero or not finite).

    A text_dimension equal to the vector's own dimension uses the unit vector itself: a square
    Gaussian matrix would keep every direction but stretch some and squash others (its singular
    values spread from near 0 to 2), which turns the isotropic prior on the weights into a lopsided
    one and costs a matrix product for nothing. Below it, one BLAS call projects and normalises
    (P v / |v|): every decision and every outcome the learner learns projects its task's vector,
    so this is on the task-created stream's path and the worker's learner's."""
    if config.text_dimension <= 0:
        return None
    v = np.asarray(vector, dtype=np.float64)
    norm = math.sqrt(float(blas.ddot(v, v)))
    if not math.isfinite(norm) or norm <= 0:
        return None
    if int(v.shape[0]) == config.text_dimension:
        return v / norm
    projection = _projection_transposed(int(v.shape[0]), config.text_dimension)
    return np.asarray(blas.dgemv(1.0 / norm, projection, v, trans=1), dtype=np.float64)


def learned_input(state: LearnedState, phi: ol.Array | None, arms: Iterable[Arm]) -> LearnedInput:
    """The stacking weights and text logits for one task (cheap: one dot product per arm)."""
    text_all = 0.0
    text_arm: dict[Arm, float] = {}
    length_arm: dict[Arm, float] = {}
    if phi is not None:
        length = 0.0
        if state.length is not None:
            phi, length = phi[:-1], state.length.centred(float(phi[-1]))
        if state.text_all is not None and state.text_all.count > 0:
            text_all = float(state.text_all.mean @ phi)
        for arm in arms:
            model = state.text_arm.get(arm)
            if model is not None and model.count > 0:
                text_arm[arm] = float(model.mean @ phi)
            slope = state.length_arm.get(arm)
            if slope is not None and slope.count > 0:
                length_arm[arm] = float(slope.mean[0]) * length
    weights = tuple(float(w) for w in state.stacker.mean)
    return LearnedInput(weights, text_all, text_arm, length_arm)


def features(
    base: float,
    kind_light: float,
    kind_fitted: float,
    chain: float,
    text_arm: float,
    text_all: float,
    length_arm: float,
) -> tuple[float, ...]:
    """The stacker's features for one (task, arm), in FEATURES order: the per-arm base rate, the
    kind rate shrunk lightly and by the fitted strength, the chain's full estimate (probabilities),
    and the text models' logits."""
    b = ol.logit(base)
    k = ol.logit(kind_light)
    cap = MAX_FEATURE

    def clip(v: float) -> float:
        return max(-cap, min(cap, v))

    return (
        1.0,
        b,
        clip(k - b),
        clip(ol.logit(kind_fitted) - b),
        clip(ol.logit(chain) - k),
        clip(text_arm),
        clip(text_all),
        clip(length_arm),
    )


def stacked_probability(weights: tuple[float, ...], feats: tuple[float, ...]) -> float:
    """sigmoid(b + w . features); feats[1] is b."""
    return ol.sigmoid(feats[1] + math.fsum(w * f for w, f in zip(weights, feats, strict=True)))


# One revealed outcome for the layer: the arm that ran, the features stored with its schedule, the
# projected task vector (None: the text models learn nothing from it) and whether it succeeded.
Outcome = tuple[Arm, tuple[float, ...], ol.Array | None, bool]

# A queued outcome: its task's id, the arm that ran, the features its schedule stored, success.
Lesson = tuple[str, Arm, tuple[float, ...], bool]


class StateUpdate:
    """A state being taught outcomes in place: each model the outcomes touch is copied once, when
    the first of them reaches it (ol.Updater), however many calls bring them, and `state()` hands
    the result over. The result equals applying the outcomes one batch of one at a time. A learner
    pass teaches thousands of outcomes a slice at a time between turns of the event loop; this is
    what keeps the slices from copying every model again. The state it came from is untouched."""

    def __init__(self, state: LearnedState, config: LearnedConfig) -> None:
        self._start = state
        self._config = config
        self._stacker = ol.Updater(state.stacker)
        self._text_all: ol.Updater | None = None
        self._arms: dict[Arm, ol.Updater] = {}
        self._slopes: dict[Arm, ol.Updater] = {}
        self._length = state.length

    @property
    def taught(self) -> set[Arm]:
        """The arms whose text models an outcome has taught so far."""
        return set(self._arms)

    def add(self, outcomes: Iterable[Outcome]) -> None:
        """Teach these outcomes, in order. An outcome whose `phi` is None (no task vector, or text
        models off) teaches the stacker alone."""
        for arm, feats, given, success in outcomes:
            self._stacker.add(np.asarray(feats, dtype=np.float64), success, offset=feats[1])
            if given is None or self._start.text_all is None:
                continue
            kind = feats[1] + feats[2]  # the text models learn what the text adds beyond the kind rate
            phi = given
            if self._length is not None:  # centred on the outcomes before this one, then counted
                phi, raw = given[:-1], float(given[-1])
                length = np.array([self._length.centred(raw)])
                self._length = self._length.after(raw)
                self._updater(self._slopes, self._start.length_arm, arm, 1).add(length, success, kind)
            if self._text_all is None:
                self._text_all = ol.Updater(self._start.text_all)
            self._text_all.add(phi, success, kind)
            own = self._updater(self._arms, self._start.text_arm, arm, self._config.text_dimension)
            own.add(phi, success, kind)

    def _updater(
        self,
        updaters: dict[Arm, ol.Updater],
        start: Mapping[Arm, ol.LogisticState],
        arm: Arm,
        dimension: int,
    ) -> ol.Updater:
        """The arm's model being taught, from its state at the start (or the prior) when new."""
        own = updaters.get(arm)
        if own is None:
            first = start.get(arm)
            if first is None:
                first = ol.prior(dimension, self._config.text_prior_variance)
            own = updaters[arm] = ol.Updater(first)
        return own

    def learn(
        self,
        lessons: Sequence[Lesson],
        vectors: Mapping[str, Iterable[float] | ol.Array],
        chars: Mapping[str, int] | None = None,
    ) -> None:
        """Teach queued outcomes, each task's vector (and text length, `chars`) projected once (an
        outcome whose task vector is missing, pruned or never stored teaches the stacker alone)."""
        tasks = sorted({task_id for task_id, _, _, _ in lessons if task_id in vectors})
        lengths = chars or {}
        projected = {
            task_id: project(vectors[task_id], self._config, lengths.get(task_id)) for task_id in tasks
        }
        self.add(
            (arm, features, projected.get(task_id), success) for task_id, arm, features, success in lessons
        )

    def state(self) -> LearnedState:
        """The state taught so far (this update takes no outcome after it)."""
        return LearnedState(
            self._stacker.state(),
            self._start.text_all if self._text_all is None else self._text_all.state(),
            {**self._start.text_arm, **{arm: updater.state() for arm, updater in self._arms.items()}},
            self._length,
            {**self._start.length_arm, **{arm: updater.state() for arm, updater in self._slopes.items()}},
        )


def apply_outcomes(state: LearnedState, outcomes: Iterable[Outcome], config: LearnedConfig) -> LearnedState:
    """The state after these outcomes, in order (`state` itself is untouched; see StateUpdate)."""
    update = StateUpdate(state, config)
    update.add(outcomes)
    return update.state()
