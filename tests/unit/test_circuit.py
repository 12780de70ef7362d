from __future__ import annotations

import pytest

from processors.embedders.circuit import CircuitBreaker, CircuitState


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker(failure_threshold=3, reset_after_s=10.0, clock=clock)


def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        assert breaker.try_acquire()
        breaker.record_failure()


def test_starts_closed_and_lets_calls_through(breaker: CircuitBreaker) -> None:
    assert breaker.state is CircuitState.CLOSED
    assert all(breaker.try_acquire() for _ in range(10))
    assert breaker.seconds_until_trial() == 0.0


def test_stays_closed_below_the_threshold(breaker: CircuitBreaker) -> None:
    fail(breaker, 2)
    assert breaker.state is CircuitState.CLOSED
    assert breaker.consecutive_failures == 2


def test_a_success_resets_the_consecutive_count(breaker: CircuitBreaker) -> None:
    fail(breaker, 2)
    breaker.record_success()
    fail(breaker, 2)
    assert breaker.state is CircuitState.CLOSED


def test_opens_at_the_threshold_and_refuses_calls(breaker: CircuitBreaker, clock: FakeClock) -> None:
    fail(breaker, 3)
    assert breaker.state is CircuitState.OPEN
    assert breaker.times_opened == 1
    assert not breaker.try_acquire()
    clock.advance(4.0)
    assert not breaker.try_acquire()
    assert breaker.seconds_until_trial() == pytest.approx(6.0)


def test_after_the_reset_time_exactly_one_trial_goes_through(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    fail(breaker, 3)
    clock.advance(10.0)
    assert breaker.seconds_until_trial() == 0.0
    assert breaker.try_acquire()
    assert breaker.state is CircuitState.HALF_OPEN
    assert not breaker.try_acquire()  # the trial is still in flight


def test_a_successful_trial_closes_the_circuit(breaker: CircuitBreaker, clock: FakeClock) -> None:
    fail(breaker, 3)
    clock.advance(10.0)
    assert breaker.try_acquire()
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED
    assert breaker.consecutive_failures == 0
    assert breaker.try_acquire() and breaker.try_acquire()


def test_a_failed_trial_reopens_for_a_full_reset_period(breaker: CircuitBreaker, clock: FakeClock) -> None:
    fail(breaker, 3)
    clock.advance(12.0)
    assert breaker.try_acquire()
    breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    assert breaker.times_opened == 2
    clock.advance(9.9)
    assert not breaker.try_acquire()
    clock.advance(0.1)
    assert breaker.try_acquire()


def test_a_released_trial_lets_the_next_caller_try(breaker: CircuitBreaker, clock: FakeClock) -> None:
    fail(breaker, 3)
    clock.advance(10.0)
    assert breaker.try_acquire()
    breaker.release()  # e.g. the trial call was cancelled
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.try_acquire()


def test_late_failures_while_open_do_not_extend_the_open_period(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    granted = [breaker.try_acquire() for _ in range(5)]  # five calls in flight together
    assert all(granted)
    for _ in range(5):
        breaker.record_failure()
        clock.advance(1.0)
    assert breaker.state is CircuitState.OPEN
    assert breaker.times_opened == 1
    assert breaker.seconds_until_trial() == pytest.approx(7.0)  # opened at the third failure


def test_a_threshold_of_one_opens_on_the_first_failure(clock: FakeClock) -> None:
    breaker = CircuitBreaker(failure_threshold=1, reset_after_s=0.0, clock=clock)
    fail(breaker, 1)
    assert breaker.state is CircuitState.OPEN
    assert breaker.try_acquire()  # zero reset time: the trial is allowed at once


def test_invalid_settings_are_rejected() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=0, reset_after_s=1.0)
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=1, reset_after_s=-1.0)
