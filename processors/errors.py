"""Typed errors. Each says whether retrying can help; the failure policy reads only that flag."""

from __future__ import annotations


class TasksageError(Exception):
    """Base class. `retriable` tells the failure policy whether to retry or dead-letter."""

    retriable: bool = False

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base} ({self.hint})" if self.hint else base


class InvalidEvent(TasksageError):
    """The record can never be processed as it is: dead-letter it with this reason."""

    retriable = False


class UnsupportedSchemaVersion(InvalidEvent):
    """The event names a schema_version this worker cannot read."""


class PayloadTooLarge(InvalidEvent):
    """The record is larger than the configured limit."""


class WrongDimension(InvalidEvent):
    """An embedding came back with a dimension other than the model's."""


class RetriableError(TasksageError):
    """A dependency failed in a way that may pass: retry with backoff, never drop."""

    retriable = True


class EmbeddingUnavailable(RetriableError):
    """The embedding provider failed (429, 5xx, timeout) or its circuit is open."""


class EmbeddingBudgetExceeded(RetriableError):
    """The daily embedding budget is spent; events wait until it resets or is raised."""


class DatabaseUnavailable(RetriableError):
    """PostgreSQL could not be reached or dropped the connection."""


class ConfigurationError(TasksageError):
    """Settings are missing or contradictory; the process cannot start."""


class MigrationError(TasksageError):
    """The migration history does not match the files in sql/."""
