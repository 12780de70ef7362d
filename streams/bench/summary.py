"""The console summary of a `tasksage bench` report (the JSON report holds every figure)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

out = Console()


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):  # ratios and ms per event need the second decimal (0.45 is not 0.5)
        return f"{value:,.2f}{unit}" if abs(value) < 10 else f"{value:,.1f}{unit}"
    return f"{value}{unit}"


def print_summary(report: dict[str, Any]) -> None:
    table = Table(
        title=f"tasksage bench: {report['run']['history']:,} history, {report['run']['embedder']} embedder"
    )
    for col in ("stream", "phase", "events/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "worker CPU s/1k"):
        table.add_column(col, justify="right" if col not in ("stream", "phase") else "left")
    for stream, phases in report.get("streams", {}).items():
        for phase, r in phases.items():
            lat = r.get("schedule_latency_ms") or r.get("commit_latency_ms") or {}
            table.add_row(
                stream, phase, _fmt(r["throughput_eps"]), _fmt(lat.get("p50_ms")), _fmt(lat.get("p95_ms")),
                _fmt(lat.get("p99_ms")), _fmt(lat.get("max_ms")), _fmt(r["worker_cpu_s_per_1000_events"]),
            )  # fmt: skip
    out.print(table)
    for stream, index in (("execution-result", "neighbour"), ("message-ingested", "message")):
        full = report.get("streams", {}).get(stream, {}).get("full", {})
        if full.get("index_queue_drained_s") is not None:
            out.print(
                f"{stream} full speed: {index} index caught up {_fmt(full['index_queue_drained_s'])} s "
                f"after the first send ({_fmt(full.get('throughput_incl_index_eps'))} ev/s including the "
                "queued index inserts)"
            )
    results_full = report.get("streams", {}).get("execution-result", {}).get("full", {})
    if results_full.get("learning_queue_drained_s") is not None:
        out.print(
            f"execution-result full speed: the learned layer caught up {_fmt(results_full['learning_queue_drained_s'])} s "
            f"after the first send ({_fmt(results_full.get('throughput_incl_learning_eps'))} ev/s including learning)"
        )
    refs = report.get("references", {})
    out.print(
        f"raw aiokafka {_fmt(refs.get('raw_kafka_eps'))} ev/s, no-op pipeline {_fmt(refs.get('noop_pipeline_eps'))} ev/s "
        f"(ratio {_fmt(refs.get('noop_vs_raw_kafka'))}); worker peak RSS {_fmt(report.get('worker', {}).get('peak_rss_mb'), ' MiB')}"
    )
    _print_database_loop(refs)
    for stream, cap in report.get("capacity_on_dedicated_cores", {}).items():
        if cap:
            per = ", ".join(f"{k} {v:.2f}" for k, v in cap["cpu_ms_per_event"].items())
            out.print(f"{stream}: CPU ms/event {per} -> ~{_fmt(cap['estimate_eps'])} ev/s on dedicated cores")
    targets = Table("target", "goal", "measured", "met", title="targets")
    for t in report.get("targets", []):
        met = {True: "[green]yes[/green]", False: "[red]no[/red]", None: "-"}[t["met"]]
        targets.add_row(t["name"], t["target"], _fmt(t["measured"]), met)
    out.print(targets)
    for stream, p in report.get("profiles", {}).items():
        if isinstance(p, dict):
            parts = ", ".join(f"{k} {v:.0%}" for k, v in list(p["by_part"].items())[:5])
            cpu = p.get("cpu_s", {}).get("worker")
            where = f"worker CPU {cpu}s; " if cpu is not None else f"{p['samples']} samples; "
            out.print(f"profile {stream}: {where}{parts}")


def _print_database_loop(refs: dict[str, Any]) -> None:
    versus = refs.get("pipeline_vs_database_loop", {})
    for stream, r in refs.get("database_loop", {}).items():
        share, ratio_ = r.get("db_share_of_wall"), versus.get(stream)
        out.print(
            f"database loop {stream}: {_fmt(r.get('eps'))} ev/s, "
            f"{'-' if share is None else f'{share:.0%}'} of wall in SQL, "
            f"pipeline/loop {'-' if ratio_ is None else f'{ratio_:.2f}'}"
        )
        for st in r.get("top_statements", [])[:3]:
            # One line each, cut at the terminal's edge: the JSON has the longer text.
            line = f"  {st['us_per_event']:>8,.1f} us/event {st['calls']:>5} calls  {st['sql']}"
            out.print(line, markup=False, highlight=False, no_wrap=True, overflow="ellipsis")
