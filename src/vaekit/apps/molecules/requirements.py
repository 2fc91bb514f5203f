"""The optional packages of the molecules application, imported on first use.

RDKit, selfies and fcd come with ``pip install 'vaekit[chem]'``; the base install does not
need them. Importing them here, on first use and only once, keeps ``import vaekit`` light and
turns a missing package into one line a user can act on instead of a traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from vaekit.errors import VaekitError

__all__ = ["ChemistryUnavailable", "available", "require"]


class ChemistryUnavailable(VaekitError, ImportError):
    """A molecules feature was asked for without the package it needs."""


def require(module: str) -> ModuleType:
    """The imported module ``module`` (e.g. ``rdkit.Chem``), or a one-line ChemistryUnavailable."""
    try:
        return importlib.import_module(module)
    except ImportError:
        package = module.split(".")[0]
        raise ChemistryUnavailable(
            f"this needs the {package} package, which is not installed: pip install 'vaekit[chem]'"
        ) from None


def available(module: str) -> bool:
    """Whether ``module`` can be imported."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
