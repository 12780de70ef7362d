"""`tasksage evaluate` end to end: a small synthetic dataset replayed through the real worker,
broker and PostgreSQL, checked for the prequential rules and a complete report."""

from __future__ import annotations

import asyncpg

from processors.evaluation.report import build_report
from processors.evaluation.simulate import generate
from processors.postgres.databases import database_dsn
from streams.commands.evaluate import write_report
from streams.commands.evaluate_driver import ReplayOptions, evaluate, live_replay
from streams.runtime import Endpoints


async def _outcomes_after_schedules(dsn: str) -> asyncpg.Record:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchrow(
            """SELECT count(*) AS executions,
                      count(*) FILTER (WHERE e.recorded_at <= p.created_at) AS before_own_schedule,
                      count(*) FILTER (WHERE (e.agent, e.model) <> (p.agent, p.model)) AS other_arm,
                      (SELECT count(*) FROM predictions) AS predictions
               FROM executions e JOIN predictions p ON p.task_id = e.task_id"""
        )
    finally:
        await conn.close()


async def test_full_feedback_replay_is_prequential_and_reports_every_section(
    settings, endpoints, tmp_path, broker_kind
) -> None:
    # One database per broker leg: both legs share the session's PostgreSQL server.
    kept = f"eval_full_check_{broker_kind}"
    dataset = generate(60, seed=3)
    target = Endpoints(endpoints.bootstrap, endpoints.dsn)
    run = await live_replay(
        settings, target, dataset, ReplayOptions(feedback="full"), tmp_path, keep_database=kept
    )
    row = await _outcomes_after_schedules(database_dsn(endpoints.dsn, kept))
    arms = len(dataset.arms)
    assert row["predictions"] == 60
    assert row["executions"] == 60 * arms  # full feedback: every arm's outcome
    assert row["before_own_schedule"] == 0  # no outcome reached the database before its task's schedule
    # Reveal delay 0: task i saw every earlier task's outcomes, never its own.
    assert list(run.visible) == list(range(60))
    assert all(len(r) == arms for r in run.revealed)

    report = build_report(dataset, settings.scheduler_config(), [run])
    assert report["run"]["rule_agreement"] == 1.0  # the offline sweep re-applies the worker's own rule
    scores = report["probabilities"]["all_arms"]["tasksage"]
    assert scores["pairs"] == 60 * arms
    assert 0.0 <= scores["brier"] <= 1.0 and scores["log_loss"] > 0
    names = [r["policy"] for r in report["routing"]["rows"]]
    for expected in (
        "always the best single",
        "cheapest single within 95%",
        "static tier table",
        "random",
        "oracle",
    ):
        assert expected in names
    assert report["routing"]["curves"]["tasksage (target sweep)"]
    written = write_report(report, tmp_path / "report")
    assert {p.name for p in written} == {"report.json", "calibration.png", "cost_success.png"}
    assert all(p.stat().st_size > 1000 for p in written)


async def test_bandit_replay_reveals_only_the_chosen_arm_within_the_delay(
    settings, endpoints, tmp_path, broker_kind
) -> None:
    kept = f"eval_bandit_check_{broker_kind}"
    dataset = generate(40, seed=4)
    delay = 6
    run = await live_replay(
        settings,
        Endpoints(endpoints.bootstrap, endpoints.dsn),
        dataset,
        ReplayOptions(feedback="bandit", reveal_delay=delay),
        tmp_path,
        keep_database=kept,
    )
    row = await _outcomes_after_schedules(database_dsn(endpoints.dsn, kept))
    assert row["executions"] == 40 and row["other_arm"] == 0
    assert row["before_own_schedule"] == 0
    for i, seen in enumerate(run.visible):
        assert max(0, i - delay) <= seen <= i  # at least everything older than the delay, never itself
    assert [r for r in run.revealed] == [(p.chosen,) for p in run.predictions]


async def test_evaluate_runs_each_target_and_the_profile_ablation(settings, endpoints) -> None:
    dataset = generate(30, seed=5)
    report = await evaluate(
        settings,
        dataset,
        [0.7, 0.9],
        ReplayOptions(feedback="full", reveal_delay=0),
        ablate_profiles=True,
        endpoints=Endpoints(endpoints.bootstrap, endpoints.dsn),
    )
    live_rows = [r for r in report["routing"]["rows"] if r["policy"].startswith("tasksage")]
    assert [r["policy"] for r in live_rows] == ["tasksage (target 0.7)", "tasksage (target 0.9)"]
    # Full feedback: the second live run at 0.9 made exactly the choices the sweep recomputed at 0.9
    # from the first run's predictions, which is what the report claims about its sweep.
    swept = next(p for p in report["routing"]["curves"]["tasksage (target sweep)"] if p["target"] == 0.9)
    assert (swept["success_rate"], swept["total_cost_usd"]) == (
        live_rows[1]["success_rate"],
        live_rows[1]["total_cost_usd"],
    )
    assert [a["use_profiles"] for a in report["ablations"]] == [True, False]
    assert len(report["run"]["run_seconds"]) == 3
