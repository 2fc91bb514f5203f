"""The vaekit command line: parse, call one library function, print."""

from vaekit.cli.main import main

__all__ = ["main"]
