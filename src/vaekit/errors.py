"""Exceptions raised for problems a user can fix.

Every error vaekit raises on purpose derives from :class:`VaekitError`. The command line
catches that base class, prints its message on one line and exits with status 2; anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations


class VaekitError(Exception):
    """Base class: a problem with the user's input, files or settings (not a bug)."""


class ConfigError(VaekitError, ValueError):
    """An unknown setting, a value of the wrong type or an impossible value."""


class DataError(VaekitError, ValueError):
    """Data that cannot be read or used: missing, corrupt, wrong shape, NaN/inf, unknown name."""


class ChecksumError(DataError):
    """A downloaded or cached file whose checksum does not match the published one."""


class RunError(VaekitError):
    """A folder that is not a usable run: missing, truncated or tampered files."""


class TrainingError(VaekitError, RuntimeError):
    """Training cannot continue, e.g. the loss became NaN or infinite."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a training job. ``run_dir`` is the run folder that was kept (it holds the last
    complete epoch and can be resumed), or None when no epoch had finished and nothing was kept."""

    def __init__(self, run_dir=None):
        super().__init__(run_dir)
        self.run_dir = run_dir
