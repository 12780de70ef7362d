"""Calibration PNG of live accuracy (matplotlib, Agg; the optional `plots` extra)."""

from __future__ import annotations

from pathlib import Path

from processors.evaluation.plots import _pyplot
from processors.insights.accuracy import BINS, AccuracySummary


def live_calibration_plot(summary: AccuracySummary, title: str, path: Path) -> bool:
    """Predicted against observed success per decile, with the outcome count per bin below.
    False when matplotlib is not installed."""
    plt = _pyplot()
    if plt is None:
        return False
    fig, (ax, hist) = plt.subplots(2, 1, figsize=(6, 7), gridspec_kw={"height_ratios": [3, 1]}, sharex=True)
    ax.plot([0, 1], [0, 1], color="#999", linestyle="--", linewidth=1, label="perfect calibration")
    ax.plot(
        [b.mean_probability for b in summary.bins],
        [b.observed_rate for b in summary.bins],
        "o-",
        markersize=4,
        label="live outcomes",
    )
    scores = "no outcomes"
    if summary.outcomes:
        scores = f"{summary.outcomes} outcomes, Brier {summary.brier:.3f}, ECE {summary.ece:.3f}"
    ax.set_title(f"{title}: {scores}", fontsize=10)
    ax.set_ylabel("observed success rate")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8, loc="upper left")
    hist.bar([(b.bin + 0.5) / BINS for b in summary.bins], [b.outcomes for b in summary.bins], width=0.09)
    hist.set_xlabel("predicted success probability")
    hist.set_ylabel("outcomes")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
