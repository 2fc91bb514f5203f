"""What the command line says on stderr: errors, warnings and the interrupt message, each one line.

Standard library and vaekit.errors only: it is imported before the arguments are parsed.
"""

from __future__ import annotations

import contextlib
import sys
import warnings
from typing import Any, Iterator

from vaekit.errors import RunInterrupted


def say(line: str) -> None:
    """One line to stderr in a single write: under torchrun every process may say it, and separate
    writes of the text and its newline interleave into one garbled line."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def one_line_warning(message: Any, category: type, filename: str, lineno: int, file=None, line=None) -> None:
    """A ``warnings.showwarning`` for the command line: ``vaekit: warning: <message>``.

    Python's own format adds the file, line number and a line of vaekit's source, which mean
    nothing to someone who typed a command."""
    text = " ".join(str(message).split())  # one line, whatever the message holds
    say(f"vaekit: warning: {text}")


@contextlib.contextmanager
def cli_warnings() -> Iterator[None]:
    """Within the block, warnings print as :func:`one_line_warning`; the previous display comes back
    after it, so the Python API (and a test calling ``main``) keeps Python's own format."""
    with warnings.catch_warnings():
        warnings.showwarning = one_line_warning
        yield


def progress_wanted(args) -> bool:
    """Progress bars only on a terminal: in a log, a bar's carriage-return updates are noise
    (hundreds of kB for a long run), and --no-progress turns them off everywhere."""
    return not getattr(args, "no_progress", False) and sys.stderr.isatty()


def interrupt_message(exc: KeyboardInterrupt) -> str:
    """What Ctrl-C left behind: a training job raises RunInterrupted naming the run folder it kept."""
    if not isinstance(exc, RunInterrupted):  # Ctrl-C outside a training job
        return "stopped before it finished"
    run = exc.run_dir
    if run is None:
        return "no epoch had finished, so no run folder was kept"
    return f"the last complete epoch is saved in {run} (continue with 'vaekit train --resume {run}')"
