"""Scheduler evaluation: datasets, converters, synthetic data, replays, metrics and reports."""
