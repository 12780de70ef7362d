"""The printed summary of a report: plain (title, header, rows) tables, rendered by the CLI. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class TextTable:
    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


def _f(value: Any, spec: str = ".4f") -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return format(value, spec)


def _money(value: Any) -> str:
    return "-" if value is None else f"${value:,.4f}" if value < 10 else f"${value:,.2f}"


def probability_table(report: dict[str, Any]) -> TextTable:
    rows = []
    for scope, label in (("all_arms", "all arms"), ("chosen_arm", "chosen arm")):
        for name, s in report["probabilities"][scope].items():
            rows.append(
                (
                    label,
                    name,
                    str(s["pairs"]),
                    _f(s["brier"]),
                    _f(s["log_loss"]),
                    _f(s["auc"], ".3f"),
                    _f(s["ece"]),
                    _f(s["ece_if_calibrated"]),
                )
            )
    return TextTable(
        "Success probability (prequential: each prediction made before its outcome was published)",
        ("scored on", "predictor", "pairs", "Brier", "log loss", "AUC", "ECE", "ECE if calibrated"),
        tuple(rows),
    )


def routing_table(report: dict[str, Any]) -> TextTable | None:
    routing = report.get("routing", {})
    if "rows" not in routing:
        return None
    rows = tuple(
        (
            r["policy"],
            _f(r["success_rate"], ".3f"),
            _money(r["total_cost_usd"]),
            _f(r["cost_vs_best_single"], ".3f"),
            _f(r["oracle_saving_recovered"], ".2f"),
            r["note"],
        )
        for r in routing["rows"]
    )
    return TextTable(
        f"Routing on the ground truth (95% level = success {routing['level']:.3f})",
        ("policy", "success", "total cost", "cost / best single", "oracle saving recovered", "note"),
        rows,
    )


def level_table(report: dict[str, Any]) -> TextTable | None:
    routing = report.get("routing", {})
    if "at_95" not in routing:
        return None
    rows = []
    for name, p in routing["at_95"].items():
        if p is None:
            rows.append((name, "-", "not reached", "-", "-", "-"))
            continue
        target, value = p.get("target"), p.get("value_usd")
        setting = f"${value:.3g} a success" if value is not None else "-" if target is None else f"{target:g}"
        rows.append(
            (
                name,
                setting,
                _f(p["success_rate"], ".3f"),
                _money(p["total_cost_usd"]),
                _f(p["best_single_cost_over_this"], ".2f") + "x",
                _f(p["oracle_saving_recovered"], ".2f"),
            )
        )
    return TextTable(
        f"Cheapest point reaching {routing['level_definition']}",
        (
            "policy",
            "target or value",
            "success",
            "total cost",
            "cheaper than best single",
            "oracle saving recovered",
        ),
        tuple(rows),
    )


def two_arm_table(report: dict[str, Any]) -> TextTable | None:
    two = report.get("two_arm")
    if not two:
        return None
    rows = [(f"APGR: {name}", _f(v, ".3f")) for name, v in two["apgr"].items()]
    rows.append(("strong arm", f"{two['strong']} (success {two['strong_success_rate']:.3f})"))
    rows.append(("weak arm", f"{two['weak']} (success {two['weak_success_rate']:.3f})"))
    rows.append(
        ("strong calls needed for 95% of the strong arm (gain ranking)", _f(two["strong_share_at_95"], ".1%"))
    )
    at = two.get("at_95_sweep")
    if at:
        rows.append(
            (
                "target sweep at 95% of the strong arm",
                f"target {at['target']:g}: success {at['success_rate']:.3f} ({at['of_strong']:.1%} of strong), "
                f"cost {_money(at['total_cost_usd'])}, {at['cost_saving_x']:.2f}x cheaper than always strong",
            )
        )
    return TextTable("Two arms (RouteLLM's figures)", ("figure", "value"), tuple(rows))


def ablation_table(report: dict[str, Any]) -> TextTable | None:
    rows = []
    for a in report.get("ablations", []):
        at = a.get("at_95_sweep")
        rows.append(
            (
                a["label"],
                "on" if a["use_profiles"] else "off",
                _f(a["learning_rate"], "g"),
                _f(a["all_arms"]["brier"]),
                _f(a["all_arms"]["auc"], ".3f"),
                _f(a.get("apgr"), ".3f"),
                "-" if not at else _money(at["total_cost_usd"]),
            )
        )
    if not rows:
        return None
    return TextTable(
        "Ablation: vector adaptation (profile vectors)",
        ("run", "profiles", "learning rate", "Brier (all arms)", "AUC", "APGR", "cost at 95% (sweep)"),
        tuple(rows),
    )


def duration_table(report: dict[str, Any]) -> TextTable | None:
    d = report.get("duration", {})
    if d.get("tasksage_mae_ms") is None:
        return None
    return TextTable(
        "Duration of the chosen arm (mean absolute error)",
        ("predictor", "MAE (ms)"),
        (
            ("tasksage", _f(d["tasksage_mae_ms"], ",.0f")),
            ("base rates (per agent/model mean)", _f(d["base_rates_mae_ms"], ",.0f")),
            ("base rates per kind (mean)", _f(d.get("base_rates_per_kind_mae_ms"), ",.0f")),
        ),
    )


def orders_table(report: dict[str, Any]) -> TextTable | None:
    orders = report.get("orders")
    if orders is None:
        return None

    def pct(value: Any) -> str:
        return "-" if value is None else f"{value * 100:+.2f}%"

    def diff(value: Any) -> str:
        return "-" if value is None else f"{value:+.4f}"

    two_arm = orders.get("apgr") is not None  # APGR only where the dataset has two arms
    rows = [
        (
            "file order" if o["seed"] is None else f"shuffle, seed {o['seed']}",
            _f(o["brier"]),
            _f(o["best_base_rate_brier"]),
            pct(o["brier_gap"]),
            _f(o["log_loss"]),
            _f(o["best_base_rate_log_loss"]),
            pct(o["log_loss_gap"]),
            _f(o.get("ece")),
            _f(o.get("per_arm_ece")),
            diff(o.get("ece_gap")),
            _f(o.get("true_probabilities_ece")),
            *((_f(o.get("apgr"), ".3f"),) if two_arm else ()),
        )
        for o in orders["per_order"]
    ]
    for stat in ("mean", "min", "max"):
        brier, log_loss, ece, apgr = (
            (orders.get(metric) or {}).get(stat)
            for metric in ("brier_gap", "log_loss_gap", "ece_gap", "apgr")
        )
        apgr_cell = (_f(apgr, ".3f"),) if two_arm else ()
        rows.append((stat, "", "", pct(brier), "", "", pct(log_loss), "", "", diff(ece), "", *apgr_cell))
    scope = orders["scope"].replace("_", " ")
    columns = (
        "order",
        "Brier",
        "best base rate",
        "gap",
        "log loss",
        "best base rate",
        "gap",
        "ECE",
        "per-arm ECE",
        "gap",
        "truth's ECE",
        *(("APGR",) if two_arm else ()),
    )
    return TextTable(
        f"Order spread ({orders['orders']} orders, scored on {scope}): tasksage against the best base rate,"
        " and its ECE against the per-arm base rate's",
        columns,
        tuple(rows),
    )


def summary_tables(report: dict[str, Any]) -> list[TextTable]:
    tables = [probability_table(report)]
    for make in (orders_table, duration_table, routing_table, level_table, two_arm_table, ablation_table):
        table = make(report)
        if table is not None:
            tables.append(table)
    return tables
