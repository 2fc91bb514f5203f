"""The ``vaekit`` command: parse the arguments, call one library function, print.

Problems with the user's input end with one line on stderr and exit status 2; Python warnings
print as one line too (``vaekit: warning: ...``). Ctrl-C ends a command with status 130, and
SIGTERM (``kill``, or a job scheduler's stop) the same way with status 143: a training run keeps
its last complete epoch and says how to resume it.

Start-up time: this module, the parser and the console helpers import only the standard library
and :mod:`vaekit.config`. The module of the command asked for (and with it torch and the rest) is
imported after the arguments are parsed, so ``vaekit --help`` and a mistyped flag answer at once.
"""

from __future__ import annotations

import contextlib
import importlib
import signal
from typing import Optional, Sequence

from vaekit.cli.console import cli_warnings, interrupt_message, say
from vaekit.cli.parser import build_parser
from vaekit.errors import VaekitError

# command -> (module, function); each function takes the parsed arguments and returns the exit status
COMMANDS = {
    "train": ("vaekit.cli.train", "train"),
    "sweep": ("vaekit.cli.train", "sweep"),
    "sample": ("vaekit.cli.draw", "sample"),
    "reconstruct": ("vaekit.cli.draw", "reconstruct"),
    "interpolate": ("vaekit.cli.draw", "interpolate"),
    "traverse": ("vaekit.cli.draw", "traverse"),
    "eval": ("vaekit.cli.inspect", "evaluate"),
    "encode": ("vaekit.cli.inspect", "encode"),
    "score": ("vaekit.cli.inspect", "score"),
    "impute": ("vaekit.cli.tables", "impute"),
    "synth": ("vaekit.cli.tables", "synth"),
    "report": ("vaekit.cli.view", "report"),
    "serve": ("vaekit.cli.view", "serve"),
    "optimize": ("vaekit.cli.molecules", "optimize"),
}


@contextlib.contextmanager
def _sigterm_as_interrupt(received: list):
    """Inside the block a first SIGTERM raises KeyboardInterrupt (noted in ``received``), so a command
    stops as it does on Ctrl-C instead of dying where it stands; the previous handler afterwards.
    A second SIGTERM kills at once: Python drops an exception raised while it runs a finaliser or a
    weakref callback, and a stop asked for twice must not be ignored."""
    def stop(signum, frame):
        received.append(signum)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # main() called outside the main thread, where handlers cannot be set
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    module, name = COMMANDS[args.command]
    terminated: list = []
    with cli_warnings(), _sigterm_as_interrupt(terminated):
        try:
            return getattr(importlib.import_module(module), name)(args)
        except VaekitError as exc:
            say(f"vaekit: error: {exc}")
            return 2
        except KeyboardInterrupt as exc:
            say(f"vaekit: {'terminated' if terminated else 'interrupted'}; {interrupt_message(exc)}")
            return 128 + signal.SIGTERM if terminated else 130
