"""Metric names in PromQL, and the names a Prometheus scrape made known.

Names come from Prometheus's own grammar (promql-parser), so label values, strings, function
names, `by (...)` lists and range durations are never mistaken for metrics.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import promql_parser

# Grafana's interval macros, which Prometheus does not know; replaced before a query is sent.
GRAFANA_MACROS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}


def expand_macros(expr: str) -> str:
    for macro, value in GRAFANA_MACROS.items():
        expr = expr.replace(macro, value)
    return expr


def metric_names(expr: str) -> set[str]:
    """Every metric a query selects, by bare name or by an exact `__name__` matcher."""
    names: set[str] = set()

    def visit(node: Any) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            for matcher in node.matchers.matchers:
                if matcher.name == "__name__":
                    assert matcher.op == promql_parser.MatchOp.Equal, f"cannot check a regex name in {expr!r}"
                    names.add(matcher.value)
        return True

    promql_parser.walk(promql_parser.parse(expand_macros(expr)), visit)
    return names


def known_names(metadata: Mapping[str, Iterable[Mapping[str, str]]], sampled: Iterable[str]) -> set[str]:
    """Names a query may select, from the scrape's metric families (`/api/v1/metadata`) and the
    series Prometheus holds (`/api/v1/label/__name__/values`).

    A family declared without a sample yet (a labelled counter before its first increment) is in
    the metadata only; its series names follow from its type: a histogram's `_bucket`, `_count`,
    `_sum`, a counter's `_total` (prometheus-client declares counters by their `_total` name) and
    the `_created` timestamps prometheus-client adds.
    """
    names = set(sampled)
    for family, entries in metadata.items():
        kinds = {entry["type"] for entry in entries}
        names.add(family)
        if "histogram" in kinds:
            names |= {f"{family}_bucket", f"{family}_count", f"{family}_sum", f"{family}_created"}
        if "summary" in kinds:
            names |= {f"{family}_count", f"{family}_sum", f"{family}_created"}
        if "counter" in kinds:
            base = family.removesuffix("_total")
            names |= {f"{base}_total", f"{base}_created"}
    return names
