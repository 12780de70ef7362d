"""Known answers for the evaluation scores, worked out by hand on tiny tables."""

from __future__ import annotations

import math

import pytest

from processors.evaluation.metrics import (
    auc,
    brier,
    calibrated_ece,
    calibration_bins,
    expected_calibration_error,
    log_loss,
    mean_absolute_error,
    probability_scores,
)


def test_brier_is_the_mean_squared_error_of_the_probability() -> None:
    # (0.9-1)^2 + (0.2-0)^2 + (0.6-0)^2 = 0.01 + 0.04 + 0.36 = 0.41, over 3
    assert brier([0.9, 0.2, 0.6], [True, False, False]) == pytest.approx(0.41 / 3)


def test_log_loss_is_the_mean_negative_log_likelihood() -> None:
    expected = -(math.log(0.9) + math.log(0.8) + math.log(0.4)) / 3  # = 0.4149...
    assert log_loss([0.9, 0.2, 0.6], [True, False, False]) == pytest.approx(expected)
    assert log_loss([0.9, 0.2, 0.6], [True, False, False]) == pytest.approx(0.414932, abs=1e-6)


def test_log_loss_stays_finite_for_a_confident_miss() -> None:
    assert log_loss([1.0], [False]) == pytest.approx(-math.log(1e-6))


def test_auc_counts_ties_as_half() -> None:
    # successes scored 0.9 and 0.6, failures 0.2 and 0.6: pairs 1 + 1 + 1 + 0.5 of 4
    assert auc([0.9, 0.2, 0.6, 0.6], [True, False, False, True]) == pytest.approx(0.875)


def test_auc_of_a_perfect_and_a_reversed_ranking() -> None:
    assert auc([0.1, 0.4, 0.8], [False, True, True]) == pytest.approx(1.0)
    assert auc([0.9, 0.4, 0.1], [False, True, True]) == pytest.approx(0.0)


def test_auc_needs_both_classes() -> None:
    assert auc([0.3, 0.7], [True, True]) is None


def test_calibration_bins_and_ece_by_hand() -> None:
    preds = [0.05, 0.15, 0.15, 0.95]
    outcomes = [False, True, False, True]
    bins = calibration_bins(preds, outcomes, bins=10)
    assert [b.count for b in bins] == [1, 2, 0, 0, 0, 0, 0, 0, 0, 1]
    assert bins[1].mean_prediction == pytest.approx(0.15) and bins[1].observed_rate == pytest.approx(0.5)
    assert bins[2].mean_prediction is None
    # 1/4 * 0.05 + 2/4 * 0.35 + 1/4 * 0.05
    assert expected_calibration_error(preds, outcomes, bins=10) == pytest.approx(0.2)


def test_a_prediction_of_one_lands_in_the_last_bin() -> None:
    assert calibration_bins([1.0], [True], bins=4)[-1].count == 1


def test_mean_absolute_error_skips_unknown_values() -> None:
    assert mean_absolute_error([100.0, None, 300.0], [150.0, 200.0, 200.0]) == pytest.approx(75.0)
    assert mean_absolute_error([None], [1.0]) is None


def test_scores_of_nothing_are_none_not_nan() -> None:
    s = probability_scores([], [])
    assert s.count == 0 and s.brier is None and s.log_loss is None and s.auc is None and s.ece is None
    assert s.ece_if_calibrated is None


def test_mismatched_lengths_are_an_error() -> None:
    with pytest.raises(ValueError):
        brier([0.5], [True, False])


def test_a_calibrated_forecaster_that_never_hesitates_shows_no_ece() -> None:
    # predictions of 0 and 1 leave nothing to chance: every draw equals the prediction
    assert calibrated_ece([0.0, 1.0, 1.0, 0.0]) == 0.0


def test_the_ece_of_a_calibrated_coin_is_its_binomial_noise() -> None:
    # one bin of n pairs at 0.5: E|observed - 0.5| = sqrt(0.25 / n) * sqrt(2 / pi) = 0.00399 at n = 10,000
    got = calibrated_ece([0.5] * 10_000)
    assert got is not None and 0.0034 < got < 0.0046  # 200 draws: within 15%
    assert calibrated_ece([0.5] * 10_000) == got  # seeded: a report is reproducible


def test_spreading_the_same_pairs_over_more_bins_shows_more_noise() -> None:
    # the same 0.5 average, once in one bin and once spread over five: more bins, fewer pairs each
    sharp = [0.1, 0.3, 0.5, 0.7, 0.9] * 2_000
    flat = calibrated_ece([0.5] * 10_000)
    spread = calibrated_ece(sharp)
    assert flat is not None and spread is not None and spread > 1.5 * flat


def test_calibrated_ece_of_nothing_is_none() -> None:
    assert calibrated_ece([]) is None
