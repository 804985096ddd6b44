"""The exceptions ``ser`` raises on purpose: one family.

Every error a user can fix derives from :class:`SerError`, so callers (the app, the CLI, the API)
catch one family and show its message; anything else is a bug. Messages say what is wrong, what
came and what is accepted.
"""

from __future__ import annotations

__all__ = ["SerError", "AudioError", "DataError", "ModelError", "SettingError", "ParameterError",
           "AccessError", "BusyError", "SchedulerError", "EnrolmentError"]


class SerError(Exception):
    """Base class of every error ``ser`` raises on purpose; its message is meant for the user."""


class AudioError(SerError, ValueError):
    """The audio given cannot be used: the message says what is wrong and what is accepted."""


class DataError(SerError, ValueError):
    """A corpus, manifest or data folder cannot be read as training data."""


class ModelError(SerError):
    """A saved model is missing, corrupt, untrusted or incompatible."""


class SettingError(SerError, ValueError):
    """A ``SER_*`` setting (environment variable) holds a value that cannot be used."""


class ParameterError(SerError, ValueError):
    """An argument given through the app, the API or the CLI is not usable."""


class AccessError(SerError):
    """An admin action without the admin token on a public server."""


class BusyError(SerError):
    """A training run is already in progress."""


class SchedulerError(SerError):
    """The Dask scheduler named with ``--scheduler`` cannot be used."""


class EnrolmentError(SerError, ValueError):
    """Speaker enrolment cannot be done, or a speaker profile cannot be used: too few clips, an
    unusable clip (named), a file that is not a ``ser`` speaker profile, or one enrolled for another
    model's features. An existing profile is never changed by a failed enrolment."""
