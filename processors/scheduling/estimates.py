"""Per-arm estimates for one task: success probability, confidence, duration, cost. Pure.

Success probability is a Beta posterior built from the general to the specific:

    p0  = the tier row's prior_success for the arm (0.5 without one)
    p_g = global rate of the arm, shrunk toward p0 by `prior_strength` (m) pseudo-counts
    p_k = kind rate of the arm, shrunk toward p_g the same way
    p_t = sigmoid(logit p_k + d), d = how much easier the task looks than its kind, judged from the
          other arms' outcomes on similar tasks (difficulty_shift; off when difficulty_sd is 0)
    p   = Beta(m_n * p_t + S, m_n * (1 - p_t) + F)  with S, F the similarity-weighted neighbour
          successes and failures of this arm, weight = exp(sharpness * (sim - 1)) for sim >=
          similarity_floor, and m_n = neighbour_strength

Each level's data weighs n / (n + m) against the level above, so shrinkage fades as evidence
grows. Adapted profile vectors may add a small one-sided pseudo-observation (see _profile_nudge).

A task without a kind takes its neighbourhood as its kind (with the learned layer on): its
neighbours' outcomes (success, duration, cost) per arm, each past task weighted relative to the
closest (neighbourhood_totals). The absolute weight leaves the neighbours sentence vectors give
similar tasks (cosine 0.5 to 0.7) about one outcome in all, though most are of the task's family.
Counted as a kind, the fitted shrinkage and the learned stacking decide how far they move the
estimate, and the text models learn what the text adds beyond them. The chain's neighbour level
and the shared difficulty then read the same neighbours against a rate built from them, so for
such a task they add only what their absolute weights say beyond the neighbourhood.

`evidence` is the similarity-weighted neighbour attempts plus the arm's attempts in the most
specific pooled scope (the kind when the task has one, else global): outcomes on other kinds
only reach a kind's estimate through its m-pseudo-count prior, so they do not count as evidence
for it. The posterior sd is taken as sqrt(p(1-p) / (evidence + m + 1)); confidence is
1 - sd / sd_without_evidence, and the optimism rule's upper bound is p + z * sd.
Duration and cost follow the same chain (tier value -> global -> kind -> neighbours).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from msgspec.structs import astuple

# Module import, not names: processors.statistics imports the scheduling types, so importing
# names here would be circular when statistics is imported first.
from processors import statistics as st
from processors.scheduling import learned
from processors.scheduling.rules import arm_score, rank_key
from processors.scheduling.tiers import tiers_for_kind
from processors.scheduling.types import (
    Arm,
    ArmEstimate,
    NeighbourOutcome,
    ProfileAffinity,
    SchedulerConfig,
    SchedulingInput,
    TierOption,
)
from processors.statistics import ArmTotals

_EMPTY = ArmTotals()
_DEFAULT_CONFIG = SchedulerConfig()
_NEUTRAL_PRIOR = 0.5
_MIN_STRENGTH = 1e-6  # keeps the posterior proper when prior_strength is configured as 0


@dataclass(frozen=True, slots=True)
class Candidates:
    arms: tuple[Arm, ...]
    notes: tuple[str, ...] = ()


def neighbour_weight(similarity: float, config: SchedulerConfig) -> float:
    """exp(sharpness * (sim - 1)) at or above the floor, else 0: 1 for an identical task, monotone in sim."""
    if not math.isfinite(similarity) or similarity < config.similarity_floor:
        return 0.0
    sim = min(similarity, 1.0)
    return math.exp(config.similarity_sharpness * (sim - 1.0))


def relevant_tiers(inp: SchedulingInput) -> list[TierOption]:
    """The tier rows that apply to the task, lowest tier first (tolerates unfiltered input)."""
    return tiers_for_kind(inp.tiers, inp.kind) or sorted(inp.tiers, key=lambda r: (r.tier, r.arm))


def candidate_arms(inp: SchedulingInput, config: SchedulerConfig | None = None) -> Candidates:
    """Arms that can serve the task: its kind's tier rows, arms tried on its kind, arms tried on
    similar tasks (similarity weight at least candidate_weight). Arms known only from other kinds
    join when the kind has nothing of its own: their global success rate says little about this
    kind and would lure the choice away; a barely similar neighbour of another kind is no better."""
    cfg = config or _DEFAULT_CONFIG
    local = (
        set(inp.kind_stats)
        | {
            n.arm
            for n in inp.neighbours
            if n.task_id != inp.task_id and neighbour_weight(n.similarity, cfg) >= cfg.candidate_weight
        }
        | {t.arm for t in relevant_tiers(inp)}
    )
    every = local if (inp.kind and local) else local | set(inp.global_stats)
    if inp.requested_agent is None:
        return Candidates(tuple(sorted(every)))
    own = sorted(a for a in local | set(inp.global_stats) if a.agent == inp.requested_agent)
    if own:
        return Candidates(tuple(own))
    return Candidates(
        tuple(sorted(every)),
        (f"requested agent {inp.requested_agent!r} has no known arms; all arms were considered",),
    )


def selected_neighbours(inp: SchedulingInput, config: SchedulerConfig) -> list[NeighbourOutcome]:
    """Rows of the neighbour_k most similar other tasks (the task itself never counts as evidence)."""
    best: dict[str, float] = {}
    for n in inp.neighbours:
        if n.task_id != inp.task_id:
            best[n.task_id] = max(best.get(n.task_id, -math.inf), n.similarity)
    ranked = sorted(best, key=lambda t: (-best[t], t))[: max(config.neighbour_k, 0)]
    keep = set(ranked)
    return [n for n in inp.neighbours if n.task_id in keep]


# Neighbour rows with their similarity weight (weighed_neighbours).
Weighed = Sequence[tuple[NeighbourOutcome, float]]


def weighed_neighbours(inp: SchedulingInput, config: SchedulerConfig) -> list[tuple[NeighbourOutcome, float]]:
    """The selected neighbour rows that carry weight, each with its similarity weight (computed
    once per past task: its rows share its similarity)."""
    weights: dict[float, float] = {}
    out = []
    for n in selected_neighbours(inp, config):
        w = weights.get(n.similarity)
        if w is None:
            w = weights[n.similarity] = neighbour_weight(n.similarity, config)
        if w > 0:
            out.append((n, w))
    return out


def neighbour_evidence(
    inp: SchedulingInput,
    config: SchedulerConfig,
    weighed: Weighed | None = None,
) -> dict[Arm, ArmTotals]:
    """Per-arm neighbour totals, each scaled by its task's similarity weight. `weighed`: the
    result of weighed_neighbours, when the caller has it already (decide needs it three times)."""
    rows: dict[Arm, list[tuple[float, float, float, float, float, float]]] = {}
    for n, w in weighed_neighbours(inp, config) if weighed is None else weighed:
        t = n.totals
        rows.setdefault(n.arm, []).append(
            (
                t.attempts * w,
                t.successes * w,
                t.duration_sum_ms * w,
                t.duration_n * w,
                t.cost_sum_usd * w,
                t.cost_n * w,
            )
        )
    # One exact sum per field instead of a chain of pairwise merges: same totals in any order.
    return {arm: ArmTotals(*map(math.fsum, zip(*values, strict=True))) for arm, values in rows.items()}


def has_evidence(
    inp: SchedulingInput,
    arms: tuple[Arm, ...],
    config: SchedulerConfig,
    local: dict[Arm, ArmTotals] | None = None,
) -> bool:
    """Whether any outcome at all (global, kind or weighted neighbours) speaks for a candidate arm."""
    local = neighbour_evidence(inp, config) if local is None else local
    return any(
        inp.global_stats.get(a, _EMPTY).attempts > 0
        or inp.kind_stats.get(a, _EMPTY).attempts > 0
        or local.get(a, _EMPTY).attempts > 0
        for a in arms
    )


def _profile_nudge(
    affinity: ProfileAffinity | None, config: SchedulerConfig, m: float
) -> tuple[float, float]:
    """(extra successes, extra failures) from the task's affinity to the arm's adapted profiles.

    The contrast success_sim - failure_sim (in [-2, 2]) is a Rocchio classifier score. Halved, it
    becomes at most profile_weight pseudo-observations, scaled by min(w_s, w_f) / (min(w_s, w_f) + m):
    a contrast is only as trustworthy as the thinner of the two profiles. Like neighbour evidence it
    competes with the m-strength prior; realistic contrasts (~0.1) move p by a point or two.
    """
    if not config.use_profiles or affinity is None or config.profile_weight <= 0:
        return 0.0, 0.0
    s, f = affinity.success_similarity, affinity.failure_similarity
    if s is None or f is None or not (math.isfinite(s) and math.isfinite(f)):
        return 0.0, 0.0
    support = max(min(affinity.success_weight, affinity.failure_weight), 0.0)
    amount = config.profile_weight * max(-1.0, min(1.0, (s - f) / 2.0)) * support / (support + m)
    return (amount, 0.0) if amount > 0 else (0.0, -amount)


def _chain(values: list[tuple[float, float]], base: float | None, m: float) -> float | None:
    """Shrink each (sum, n) level toward the one before it, starting from base."""
    current = base
    for total, n in values:
        current = st.shrunk_mean(total, n, current, m)
    return current


def posterior_sd(est: ArmEstimate, config: SchedulerConfig) -> float:
    p = est.success_probability
    return math.sqrt(p * (1.0 - p) / (est.evidence + max(config.prior_strength, 0.0) + 1.0))


def upper_bound(est: ArmEstimate, config: SchedulerConfig) -> float:
    """Optimistic success probability: mean + optimism_z * posterior sd, capped at 1."""
    return min(1.0, est.success_probability + config.optimism_z * posterior_sd(est, config))


def _kind_rate(inp: SchedulingInput, arm: Arm, tier: TierOption | None, m: float) -> float:
    """Tier prior -> global rate -> kind rate, each level shrunk toward the one above."""
    k = inp.kind_stats.get(arm, _EMPTY)
    return st.shrunk_rate(
        k.successes, k.attempts, _global_rate(inp.global_stats.get(arm, _EMPTY), tier, m), m
    )


def fitted_kind_strength(
    kind_stats: Mapping[Arm, ArmTotals], global_rates: Mapping[Arm, float], m: float
) -> float:
    """Pseudo-counts for shrinking this kind's rates toward the arms' global rates, fitted to how far
    the kind's outcomes stray from those rates across all arms (empirical Bayes, method of moments):
    with n attempts at rate p + e, E[(S - n p)^2] = n p (1 - p) + n^2 Var(e), and a Beta prior of
    strength M has Var(e) = p (1 - p) / (M + 1). Kinds that do not move the rates beyond binomial
    noise get HEAVY_KIND_SHRINKAGE * m (also the answer before any outcome); kinds that clearly do,
    as little as m, the per-kind base rate's own shrinkage. Pooling over arms is what makes it
    quick: with full feedback every arm's outcome on the kind counts (with bandit feedback only the
    chosen arms', which were chosen for looking good, so it leans lighter)."""
    strongest = m * learned.HEAVY_KIND_SHRINKAGE
    excess = weight = noise = 0.0
    for arm, k in kind_stats.items():
        n = k.attempts
        if n <= 0:
            continue
        p = global_rates[arm]
        excess += (k.successes - n * p) ** 2 - n * p * (1.0 - p)
        weight += n * n
        noise += n * n * p * (1.0 - p)
    if weight <= 0 or excess <= 0:
        return strongest
    return min(strongest, max(m, noise / excess - 1.0))


def _global_rate(g: ArmTotals, tier: TierOption | None, m: float) -> float:
    """Tier prior -> global rate (the per-arm base rate the learned layer can lean toward)."""
    p0 = tier.prior_success if tier is not None and tier.prior_success is not None else _NEUTRAL_PRIOR
    return st.shrunk_rate(g.successes, g.attempts, p0, m)


_LOGIT_CLAMP = 1e-4


def _logit(p: float) -> float:
    q = min(max(p, _LOGIT_CLAMP), 1.0 - _LOGIT_CLAMP)
    return math.log(q / (1.0 - q))


def _shifted(p: float, delta: float) -> float:
    if delta == 0.0:
        return p
    return 1.0 / (1.0 + math.exp(-(_logit(p) + delta)))


def difficulty_shift(
    inp: SchedulingInput,
    config: SchedulerConfig,
    kind_rates: Mapping[Arm, float],
    weighed: Weighed | None = None,
) -> dict[Arm, float]:
    """Per arm, how much easier (+) or harder (-) than its kind the task looks, in logits, judged
    from the OTHER arms' outcomes on similar tasks (the arm's own outcomes enter as Beta evidence,
    so they are not counted twice).

    Model: logit p(arm, task) = logit p_kind(arm) + d_task, with d_task ~ Normal(0, difficulty_sd^2).
    One Newton step from d = 0 on the similarity-weighted outcomes gives
        d = sum w (successes - attempts p) / (sum w attempts p (1 - p) + 1 / difficulty_sd^2).
    This lets an outcome of any arm inform every arm: with bandit feedback each past task shows one
    arm only, and a hard task is usually hard for all of them.
    """
    if config.difficulty_sd <= 0:
        return {}
    precision = 1.0 / (config.difficulty_sd * config.difficulty_sd)
    num: dict[Arm, float] = {}
    den: dict[Arm, float] = {}
    for n, w in weighed_neighbours(inp, config) if weighed is None else weighed:
        p = kind_rates.get(n.arm)
        if p is None or n.totals.attempts <= 0:
            continue
        num[n.arm] = num.get(n.arm, 0.0) + w * (n.totals.successes - n.totals.attempts * p)
        den[n.arm] = den.get(n.arm, 0.0) + w * n.totals.attempts * p * (1.0 - p)
    total_num, total_den = math.fsum(num.values()), math.fsum(den.values())
    out = {}
    for arm in kind_rates:
        d = (total_num - num.get(arm, 0.0)) / (total_den - den.get(arm, 0.0) + precision)
        out[arm] = max(-_MAX_SHIFT, min(_MAX_SHIFT, d))
    return out


def neighbourhood_totals(
    weighed: Weighed, local: Mapping[Arm, ArmTotals], config: SchedulerConfig
) -> dict[Arm, ArmTotals]:
    """The neighbourhood's per-arm totals, a kindless task's stand-in kind (module docstring): the
    neighbour evidence `local` (from `weighed`) rescaled so that the closest task weighs 1, each
    exp(sharpness * (sim - sim_closest)); if even the closest is barely similar (under
    candidate_weight), as if it had that weight: a task unlike any seen takes little as its kind."""
    closest = max((w for _, w in weighed), default=0.0)  # 0 only when there is no neighbour evidence
    scale = 1.0 / max(closest, config.candidate_weight) if closest > 0 else 0.0
    return {arm: ArmTotals(*(v * scale for v in astuple(t))) for arm, t in local.items()}


_MAX_SHIFT = 3.0


def estimate_arms(
    inp: SchedulingInput,
    config: SchedulerConfig,
    arms: tuple[Arm, ...] | None = None,
    *,
    weighed: Weighed | None = None,
    local: dict[Arm, ArmTotals] | None = None,
) -> list[ArmEstimate]:
    """Estimates for the given arms (default: the candidate arms), best first by the configured rule
    (rules.rank_key).
    `weighed` and `local`: weighed_neighbours and neighbour_evidence, if already computed."""
    chosen_arms = candidate_arms(inp, config).arms if arms is None else arms
    weighed = weighed_neighbours(inp, config) if weighed is None else weighed
    m = max(config.prior_strength, _MIN_STRENGTH)
    tier_of: dict[Arm, TierOption] = {}
    for row in relevant_tiers(inp):
        tier_of.setdefault(row.arm, row)
    local = neighbour_evidence(inp, config, weighed) if local is None else local
    if not inp.kind and inp.learned is not None and config.neighbourhood_kind:
        inp = replace(inp, kind_stats=neighbourhood_totals(weighed, local, config))
    m_nb = max(config.neighbour_strength, _MIN_STRENGTH)
    kind_rates = {arm: _kind_rate(inp, arm, tier_of.get(arm), m) for arm in set(chosen_arms) | set(local)}
    shift = difficulty_shift(inp, config, kind_rates, weighed)
    # The learned layer's per-arm base rates, once for the candidates and every arm seen on the kind.
    global_rates: dict[Arm, float] = {}
    kind_strength = 0.0
    if inp.learned is not None:
        global_rates = {
            arm: _global_rate(inp.global_stats.get(arm, _EMPTY), tier_of.get(arm), m)
            for arm in {*chosen_arms, *inp.kind_stats}
        }
        kind_strength = fitted_kind_strength(inp.kind_stats, global_rates, m)
    out = []
    for arm in chosen_arms:
        g = inp.global_stats.get(arm, _EMPTY)
        k = inp.kind_stats.get(arm, _EMPTY)
        n = local.get(arm, _EMPTY)
        tier = tier_of.get(arm)
        p_k = kind_rates[arm]
        p_task = _shifted(p_k, shift.get(arm, 0.0))
        alpha, beta = st.beta_posterior(n.successes, n.attempts, p_task, m_nb)
        extra_s, extra_f = _profile_nudge(inp.profiles.get(arm), config, m)
        p = min(1.0, max(0.0, st.beta_mean(alpha + extra_s, beta + extra_f, default=p_task)))
        feats: tuple[float, ...] = ()
        if inp.learned is not None:
            p_g = global_rates[arm]
            p_fitted = st.shrunk_rate(k.successes, k.attempts, p_g, kind_strength)
            lin = inp.learned
            text_arm, length_arm = lin.text_arm.get(arm, 0.0), lin.length_arm.get(arm, 0.0)
            feats = learned.features(p_g, p_k, p_fitted, p, text_arm, lin.text_all, length_arm)
            p = learned.stacked_probability(lin.weights, feats)
        pooled = k.attempts if inp.kind else g.attempts  # "" is no kind, as in the statistics
        evidence = max(n.attempts, 0.0) + max(pooled, 0.0)
        s0 = max(config.prior_strength, 0.0) + 1.0
        confidence = 1.0 - math.sqrt(s0 / (evidence + s0))
        duration = _chain(
            [(t.duration_sum_ms, t.duration_n) for t in (g, k, n)],
            tier.expected_duration_ms if tier is not None else None,
            m,
        )
        cost = _chain(
            [(t.cost_sum_usd, t.cost_n) for t in (g, k, n)],
            tier.cost_per_call_usd if tier is not None else None,
            m,
        )
        out.append(
            ArmEstimate(
                arm=arm,
                success_probability=p,
                confidence=min(1.0, max(0.0, confidence)),
                predicted_duration_ms=duration,
                expected_cost_usd=cost,
                evidence=evidence,
                meets_target=p >= config.success_target,
                score=arm_score(p, cost, config),
                features=feats,
            )
        )
    return sorted(out, key=rank_key(config))
