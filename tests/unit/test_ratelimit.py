"""The API's moving-window rate limit (streams/api/ratelimit.py)."""

from __future__ import annotations

from limits import parse

from streams.api.ratelimit import SWEEP_INTERVAL_S, MovingWindow


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_at_most_the_limit_in_any_window_per_caller() -> None:
    clock = Clock()
    window = MovingWindow(parse("3/minute"), clock)
    assert [window.hit("a") for _ in range(3)] == [None, None, None]
    clock.now += 20
    assert window.hit("a") == 40.0  # the first hit leaves the window in 40 s
    assert window.hit("b") is None  # another caller has a window of its own
    clock.now += 39.5
    assert window.hit("a") == 0.5  # refusals are not counted
    clock.now += 0.5
    assert window.hit("a") is None  # the first three have left: three more
    window.hit("a")
    clock.now += 10
    assert window.hit("a") is None
    assert window.hit("a") == 50.0


def test_idle_callers_are_forgotten() -> None:
    clock = Clock()
    window = MovingWindow(parse("5/second"), clock)
    for who in ("a", "b", "c"):
        window.hit(who)
    clock.now += SWEEP_INTERVAL_S + 1
    window.hit("d")
    assert list(window._hits) == ["d"]
