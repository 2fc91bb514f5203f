"""One-line messages on stderr, the way every job speaks outside its progress bars and tables.

``tell(t, message)`` is a run's remark ("vaekit: ..."), from rank 0 only and silent when the run
is (``training.verbose=false``); ``warn(message)`` is a warning that is always shown.
"""

from __future__ import annotations

import sys

from vaekit.training import distributed

__all__ = ["tell", "warn"]


def tell(t, message: str) -> None:
    """One line on stderr from rank 0, unless the run is silent (``training.verbose=false``)."""
    if t.verbose and distributed.is_main():
        sys.stderr.write(f"vaekit: {message}\n")
        sys.stderr.flush()


def warn(message: str) -> None:
    """One warning line on stderr, whatever the run's verbosity."""
    sys.stderr.write(f"vaekit: warning: {message}\n")
    sys.stderr.flush()
