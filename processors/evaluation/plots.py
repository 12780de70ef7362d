"""PNG figures from a report dict: calibration plot and cost-versus-success curve (matplotlib, Agg).

matplotlib is the optional `plots` extra; without it the report is still written, without figures.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from processors.evaluation.runs import PER_KIND_BASELINE


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")  # files only, never a display
    import matplotlib.pyplot as plt

    return plt


def _footer(fig: Any, report: dict[str, Any]) -> None:
    ds = report["dataset"]
    run = report["run"]
    text = (
        f"{ds['name']}: {ds['tasks']} tasks, {run['feedback']} feedback, embedder {run.get('embedder', '?')}, "
        f"reveal delay {run.get('reveal_delay', '?')}."
    )
    if ds.get("attribution"):
        text += " Data: " + ds["attribution"]
    fig.text(
        0.01, 0.005, "\n".join(textwrap.wrap(text, 150)), fontsize=6, va="bottom", ha="left", color="#444"
    )


def calibration_plot(report: dict[str, Any], path: Path) -> bool:
    plt = _pyplot()
    if plt is None:
        return False
    cal = report["calibration"]
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(6, 7), gridspec_kw={"height_ratios": [3, 1]}, sharex=True)
    ax.plot([0, 1], [0, 1], color="#999", linestyle="--", linewidth=1, label="perfect calibration")
    for name, style in (("tasksage", "o-"), (PER_KIND_BASELINE, "s:")):
        bins = [b for b in cal[name] if b["count"]]
        ax.plot(
            [b["mean_prediction"] for b in bins],
            [b["observed_rate"] for b in bins],
            style,
            label=name,
            markersize=4,
        )
    scores = report["probabilities"]["all_arms" if cal["scope"] == "all arms" else "chosen_arm"]["tasksage"]
    ax.set_title(f"Calibration ({cal['scope']}): Brier {scores['brier']}, ECE {scores['ece']}", fontsize=10)
    ax.set_ylabel("observed success rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, loc="upper left")
    bins = cal["tasksage"]
    hist.bar(
        [(b["lower"] + b["upper"]) / 2 for b in bins],
        [b["count"] for b in bins],
        width=0.09,
        color="#4c72b0",
    )
    hist.set_xlabel("predicted success probability")
    hist.set_ylabel("predictions")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    _footer(fig, report)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def cost_success_plot(report: dict[str, Any], path: Path) -> bool:
    plt = _pyplot()
    routing = report.get("routing", {})
    if plt is None or "curves" not in routing:
        return False
    two_arm = report.get("two_arm")
    fig, axes = plt.subplots(1, 2 if two_arm else 1, figsize=(12 if two_arm else 7, 5.2))
    ax = axes[0] if two_arm else axes
    for name, points in routing["curves"].items():
        ordered = sorted(points, key=lambda p: p["total_cost_usd"])
        ax.plot(
            [p["total_cost_usd"] for p in ordered],
            [p["success_rate"] for p in ordered],
            ".-" if name.startswith("tasksage") else ".:",
            label=name,
            markersize=3,
            linewidth=1,
        )
    for row in routing["rows"]:
        marker = "*" if row["policy"].startswith("tasksage") else "x" if "oracle" in row["policy"] else "o"
        ax.plot([row["total_cost_usd"]], [row["success_rate"]], marker, markersize=7, label=row["policy"])
    ax.axhline(
        routing["level"], color="#c44", linestyle="--", linewidth=1, label="95% of the best single arm"
    )
    ax.set_xscale("log")  # arms differ by orders of magnitude in price
    ax.set_xlabel("total cost (USD, log scale)")
    ax.set_ylabel("success rate")
    ax.set_title("Cost versus success, sweeping the success target", fontsize=10)
    ax.legend(fontsize=6, loc="best")
    if two_arm:
        gain = axes[1]
        curve = two_arm["curve"]
        gain.plot(
            [100 * x for x in curve["strong_share"]],
            curve["success_rate"],
            "-",
            label=f"tasksage (APGR {two_arm['apgr']['tasksage']})",
        )
        gain.plot(
            [0, 100],
            [two_arm["weak_success_rate"], two_arm["strong_success_rate"]],
            ":",
            color="#888",
            label="random (APGR 0.5)",
        )
        gain.axhline(
            two_arm["level"], color="#c44", linestyle="--", linewidth=1, label="95% of the strong arm"
        )
        gain.set_xlabel(f"calls to the strong arm, {two_arm['strong']} (%)")
        gain.set_ylabel("success rate")
        gain.set_title("Performance gap recovered (RouteLLM's APGR)", fontsize=10)
        gain.legend(fontsize=8, loc="lower right")
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    _footer(fig, report)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def write_plots(report: dict[str, Any], directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, draw in (("calibration.png", calibration_plot), ("cost_success.png", cost_success_plot)):
        if draw(report, directory / name):
            written.append(directory / name)
    return written
