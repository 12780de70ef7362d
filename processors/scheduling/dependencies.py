"""Order ranked pending work so no task comes before an unfinished dependency. Pure.

A task is *ready* when every task it depends on has succeeded. Ready tasks keep the score order
(ranking.py). The others are *blocked* and listed after every ready task, each marked with the
dependencies it still waits for (`blocked_by`). Among blocked tasks a dependency always comes
before its dependents (Kahn's topological order, the best score first among those whose pending
dependencies are already listed), so running the list top to bottom never starts a task early.

Two problems are reported instead of looped on:
- a dependency on a task id the database has never seen (`unknown_dependency`): the dependent
  is blocked by it until such a task arrives;
- a cycle among pending tasks (`cycle`): its members (and whatever depends on them) can never
  become ready; they are listed last, in score order, each naming what blocks it.

Only 'succeeded' satisfies a dependency: a failed dependency still needs a successful retry.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from processors.scheduling.types import PendingTask

Status = Literal["pending", "succeeded", "failed"]


@dataclass(frozen=True, slots=True)
class DependencyProblem:
    kind: Literal["cycle", "unknown_dependency"]
    task_ids: tuple[str, ...]  # cycle: its members, sorted; unknown: the dependent task
    missing: tuple[str, ...] = ()  # unknown_dependency: the ids nobody has seen


@dataclass(frozen=True, slots=True)
class OrderedTask:
    task: PendingTask
    score: float
    blocked_by: tuple[str, ...]  # unfinished or unknown dependencies, sorted; () when ready


@dataclass(frozen=True, slots=True)
class DependencyOrder:
    tasks: tuple[OrderedTask, ...]
    problems: tuple[DependencyProblem, ...]

    @property
    def blocked_count(self) -> int:
        return sum(1 for t in self.tasks if t.blocked_by)


def _key(item: tuple[PendingTask, float]) -> tuple[float, datetime, str]:
    task, score = item
    return (-score, task.created_at, task.task_id)


def order_by_dependencies(
    scored: Sequence[tuple[PendingTask, float]],
    dependencies: Mapping[str, Sequence[str]],
    status: Mapping[str, Status],
) -> DependencyOrder:
    """`scored`: pending tasks with their ranking score; `dependencies`: task id -> ids it needs;
    `status`: the known status of every dependency that is not itself among `scored` (ids absent
    from both are unknown)."""
    pending = {t.task_id: (t, s) for t, s in scored}
    blocked_by: dict[str, tuple[str, ...]] = {}
    problems: list[DependencyProblem] = []
    for task_id in sorted(pending):
        deps = set(dependencies.get(task_id, ())) - {task_id}
        waiting = sorted(d for d in deps if d in pending or status.get(d, "pending") != "succeeded")
        missing = tuple(sorted(d for d in deps if d not in pending and d not in status))
        if missing:
            problems.append(DependencyProblem("unknown_dependency", (task_id,), missing))
        if task_id in dependencies.get(task_id, ()):
            problems.append(DependencyProblem("cycle", (task_id,)))
            waiting = sorted({*waiting, task_id})
        if waiting:
            blocked_by[task_id] = tuple(waiting)
    ready = sorted((pending[t] for t in pending if t not in blocked_by), key=_key)
    listed = _topological(
        pending, {t: {d for d in deps if d in blocked_by} for t, deps in blocked_by.items()}
    )
    stuck = {t for t in blocked_by if t not in set(listed)}
    component, cycles = _cycles(stuck, blocked_by)
    problems += cycles
    # Tasks that can never become ready still keep a dependency before its dependents, except
    # between members of one cycle, where no such order exists (cycle members in score order).
    stuck_order = _topological(
        pending, {t: {d for d in blocked_by[t] if d in stuck and component[d] != component[t]} for t in stuck}
    )
    out = [OrderedTask(t, s, ()) for t, s in ready]
    out += [OrderedTask(*pending[t], blocked_by[t]) for t in [*listed, *stuck_order]]
    return DependencyOrder(tuple(out), tuple(problems))


def _topological(pending: Mapping[str, tuple[PendingTask, float]], needs: dict[str, set[str]]) -> list[str]:
    """Kahn's order of the tasks in `needs` (task -> the tasks among them it must follow), the
    best score first among those free to go; tasks on a cycle of `needs` are left out."""
    dependents: dict[str, list[str]] = {}
    for t, deps in needs.items():
        for d in deps:
            dependents.setdefault(d, []).append(t)
    heap = [(_key(pending[t]), t) for t, deps in needs.items() if not deps]
    heapq.heapify(heap)
    listed: list[str] = []
    while heap:
        _, t = heapq.heappop(heap)
        listed.append(t)
        for child in dependents.get(t, ()):
            needs[child].discard(t)
            if not needs[child]:
                heapq.heappush(heap, (_key(pending[child]), child))
    return listed


def _cycles(
    stuck: set[str], blocked_by: Mapping[str, tuple[str, ...]]
) -> tuple[dict[str, int], list[DependencyProblem]]:
    """Strongly connected components of the tasks Kahn could not list (task -> component id),
    and the cycles among them: components with more than one member (a self-dependency is
    reported where it is found). Iterative Tarjan, so a long chain cannot exhaust the recursion
    limit."""
    graph = {t: [d for d in blocked_by[t] if d in stuck and d != t] for t in sorted(stuck)}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[DependencyProblem] = []
    component: dict[str, int] = {}
    for root in graph:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, i = work.pop()
            if i == 0:
                index[node] = low[node] = len(index)
                stack.append(node)
                on_stack.add(node)
            if i < len(graph[node]):
                work.append((node, i + 1))
                nxt = graph[node][i]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                members = []
                while True:
                    m = stack.pop()
                    on_stack.discard(m)
                    members.append(m)
                    component[m] = index[node]
                    if m == node:
                        break
                if len(members) > 1:
                    found.append(DependencyProblem("cycle", tuple(sorted(members))))
    return component, sorted(found, key=lambda p: p.task_ids)
