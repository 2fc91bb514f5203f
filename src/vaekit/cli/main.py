"""The ``vaekit`` command: parse the arguments, call one library function, print.

Problems with the user's input end with one line on stderr and exit status 2; Python warnings
print as one line too (``vaekit: warning: ...``).

Start-up time: this module, the parser and the console helpers import only the standard library
and :mod:`vaekit.config`. The module of the command asked for (and with it torch and the rest) is
imported after the arguments are parsed, so ``vaekit --help`` and a mistyped flag answer at once.
"""

from __future__ import annotations

import importlib
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


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    module, name = COMMANDS[args.command]
    with cli_warnings():
        try:
            return getattr(importlib.import_module(module), name)(args)
        except VaekitError as exc:
            say(f"vaekit: error: {exc}")
            return 2
        except KeyboardInterrupt as exc:
            say(f"vaekit: interrupted; {interrupt_message(exc)}")
            return 130
