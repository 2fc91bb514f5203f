"""``vaekit serve RUN``: a latent-space explorer in the browser.

A local web app over one run folder: a slider per active latent dimension decoding live, the 2-D
map of the test set's posterior means (click to decode a point), the path between two test
examples (linear or spherical), a class picker for conditional models and decoded rows for
tables. Routes (JSON): ``GET /api/info``, ``GET /api/map``, ``POST /api/decode`` {z, y?},
``POST /api/path`` {a, b, t, method, y?}, ``GET /api/example/{i}``; bad requests get HTTP 4xx and
``{"error": message}``.

The web framework (Starlette and uvicorn) is an optional extra: ``pip install 'vaekit[serve]'``.
"""

from __future__ import annotations

from pathlib import Path

from vaekit.errors import ConfigError

__all__ = ["create_app", "serve"]
_FRAMEWORK = ("starlette", "uvicorn", "anyio", "h11")


def _server():
    # Imported on first use, not at the top: the web framework is an optional extra, and a
    # missing one should read as a one-line hint, not an ImportError when vaekit.apps loads.
    try:
        from vaekit.apps.explorer import server
    except ImportError as exc:
        if (exc.name or "").split(".")[0] not in _FRAMEWORK:
            raise
        raise ConfigError(f"vaekit serve needs Starlette and uvicorn ({exc.name} is missing): "
                          "pip install 'vaekit[serve]'") from None
    return server


def create_app(run_dir: str | Path):
    """The explorer's Starlette app for the run in ``run_dir`` (for tests and other ASGI servers)."""
    return _server().create_app(run_dir)


def serve(run_dir: str | Path, host: str = "127.0.0.1", port: int = 8000, open_browser: bool = False) -> None:
    """Serve the explorer for ``run_dir`` at http://host:port/ until Ctrl-C; port 0 picks a free port."""
    _server().serve(run_dir, host=host, port=port, open_browser=open_browser)
