"""The explorer's web app (Starlette) and ``serve`` (uvicorn).

Starlette gives routing, static files, JSON responses, exception handlers and a TestClient;
uvicorn serves it. The model runs on one worker thread (see :mod:`.decode`), off the event loop,
so the page, the static files and the error answers stay quick while decodes queue.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import webbrowser
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from vaekit.apps.explorer.decode import Explorer
from vaekit.apps.explorer.validate import (
    RequestError,
    class_index,
    example_index,
    latent_vector,
    parse_body,
    path_request,
)
from vaekit.errors import ConfigError

STATIC = Path(__file__).resolve().parent / "static"


async def _on_worker(request: Request, method, *args):
    """Run ``method(*args)`` on the app's single model thread and wait for it without blocking the loop."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(request.app.state.worker, functools.partial(method, *args))


async def page(request: Request) -> FileResponse:
    return FileResponse(STATIC / "index.html")


async def info(request: Request) -> JSONResponse:
    return JSONResponse(request.app.state.info)


async def latent_map(request: Request) -> JSONResponse:
    return JSONResponse(request.app.state.map)


async def decode(request: Request) -> JSONResponse:
    explorer: Explorer = request.app.state.explorer
    body = parse_body(await request.body())
    z = latent_vector(body, explorer.model.latent_dim)
    y = class_index(body, explorer.num_classes)
    return JSONResponse(await _on_worker(request, explorer.decode, z, y))


async def path(request: Request) -> JSONResponse:
    explorer: Explorer = request.app.state.explorer
    body = parse_body(await request.body())
    a, b, t, method = path_request(body, explorer.count)
    y = class_index(body, explorer.num_classes) if body.get("y") is not None else None
    return JSONResponse(await _on_worker(request, explorer.path, a, b, t, method, y))


async def example(request: Request) -> JSONResponse:
    explorer: Explorer = request.app.state.explorer
    raw = request.path_params["i"]
    if not raw.isdigit():
        raise RequestError(f"the example index must be a whole number, not {raw[:40]!r}")
    i = example_index(int(raw), explorer.count, "example", status=404)
    return JSONResponse(await _on_worker(request, explorer.example, i))


async def request_error(request: Request, exc: RequestError) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, status_code=exc.status)


async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
    # unknown routes (404) and wrong methods (405) answer in the same JSON shape as bad requests
    message = {404: f"no such route: {request.method} {request.url.path}",
               405: f"{request.method} is not allowed on {request.url.path}"}.get(exc.status_code, str(exc.detail))
    return JSONResponse({"error": message}, status_code=exc.status_code, headers=getattr(exc, "headers", None))


async def server_error(request: Request, exc: Exception) -> JSONResponse:
    # a bug, not the client's mistake: uvicorn logs the traceback, the page gets the same JSON shape
    return JSONResponse({"error": f"internal error: {type(exc).__name__}: {exc}"[:300]}, status_code=500)


def create_app(run_dir: str | Path) -> Starlette:
    """The explorer's app for the run in ``run_dir`` (loaded once, here)."""
    explorer = Explorer(run_dir)
    worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vaekit-decode")

    @asynccontextmanager
    async def lifespan(app: Starlette):
        yield
        worker.shutdown(wait=False, cancel_futures=True)

    app = Starlette(
        routes=[
            Route("/", page), Route("/api/info", info), Route("/api/map", latent_map),
            Route("/api/decode", decode, methods=["POST"]), Route("/api/path", path, methods=["POST"]),
            Route("/api/example/{i}", example), Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ],
        exception_handlers={RequestError: request_error, HTTPException: http_error, Exception: server_error},
        lifespan=lifespan,
    )
    app.state.explorer, app.state.worker = explorer, worker
    app.state.info, app.state.map = explorer.info(), explorer.map()  # fixed for the run: computed once
    return app


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port); port 0 picks a free one. A taken port is a ConfigError."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"port {port} is not a TCP port; choose one in 1..65535 (0: any free port)")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:  # taken, not permitted (below 1024), or a host that is not this machine's
        sock.close()
        reason = exc.strerror or str(exc)
        raise ConfigError(f"cannot listen on {host}:{port} ({reason}); choose another port with --port") from None
    sock.listen(2048)  # as uvicorn's own default backlog: a burst of connections waits instead of being refused
    return sock


def serve(run_dir: str | Path, host: str = "127.0.0.1", port: int = 8000, open_browser: bool = False) -> None:
    """Serve the explorer for ``run_dir`` at http://host:port/ until Ctrl-C (loopback only by default)."""
    app = create_app(run_dir)
    sock = bind(host, port)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{sock.getsockname()[1]}/"
    print(f"vaekit explorer for {run_dir}: {url}  (Ctrl-C stops it)", flush=True)
    if open_browser:
        webbrowser.open(url)  # the socket already listens, so the browser's first request waits in its queue
    try:
        uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # uvicorn shuts down on Ctrl-C, then raises it again; for a server it is the normal way to stop
    finally:
        sock.close()
    print("vaekit explorer stopped", flush=True)
