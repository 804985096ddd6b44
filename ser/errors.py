"""The exceptions ``ser`` raises on purpose.

Every error a user can fix derives from :class:`SerError`, so callers (the app, the CLI, the API)
catch one family and show its message; anything else is a bug.
"""

from __future__ import annotations

__all__ = ["SerError", "AudioError", "DataError", "ModelError"]


class SerError(Exception):
    """Base class of every error ``ser`` raises on purpose; its message is meant for the user."""


class AudioError(SerError, ValueError):
    """The audio given cannot be used: the message says what is wrong and what is accepted."""


class DataError(SerError, ValueError):
    """A corpus, manifest or data folder cannot be read as training data."""


class ModelError(SerError):
    """A saved model is missing, corrupt, untrusted or incompatible."""
