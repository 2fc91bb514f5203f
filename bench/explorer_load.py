"""vaekit serve under load: the explorer's server on 127.0.0.1, answering decode requests one at a
time and then in a burst of concurrent ones (with bad requests mixed in), from a bounded thread pool.

    python bench/explorer_load.py [RUN] [--requests 200] [--concurrency 200] [--bad-every 10]
                                  [--out bench/results/explorer_load.md]

Without RUN it trains the default digits configuration (the default MLP, latent_dim 20) for
--epochs epochs into a temporary folder: a decode's cost depends on the architecture, not on how
long it trained. The server runs in its own process (``vaekit.apps.explorer.serve`` with port 0),
so the client's threads do not share its interpreter. Every good request must be answered 200 and
every bad one 400; latency is measured at the client (queueing included) and, for decodes, by the
server (the ``ms`` it reports: the model call and the PNG).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
from settings import machine

import vaekit

SERVE = "import sys; from vaekit.apps.explorer import serve; serve(sys.argv[1], port=0)"


def start_server(run: Path) -> tuple[subprocess.Popen, str]:
    """The explorer in a child process, and its URL (read from the line it prints when it listens)."""
    proc = subprocess.Popen([sys.executable, "-c", SERVE, str(run)], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if "http://" not in line:
        proc.kill()
        raise SystemExit(f"the explorer did not start: {line!r}")
    address = line.split("http://", 1)[1].split()[0]  # "127.0.0.1:PORT/"
    return proc, "http://" + address


def post(url: str, body: dict | str) -> tuple[int, float, dict]:
    """(status, seconds, answer) of one POST."""
    data = (body if isinstance(body, str) else json.dumps(body)).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    start = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, payload = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, payload = exc.code, exc.read()
    return status, time.perf_counter() - start, json.loads(payload)


def bodies(n: int, latent_dim: int, bad_every: int, seed: int = 0) -> list[tuple[bool, dict | str]]:
    """n requests: N(0, I) latent vectors, every bad_every-th one malformed in turn (wrong length, NaN, huge)."""
    rng = np.random.default_rng(seed)
    bad = [{"z": [0.0] * (latent_dim + 1)}, '{"z": [NaN' + ", 0" * (latent_dim - 1) + "]}", {"z": [1e6] * latent_dim}]
    out = []
    for i in range(n):
        if bad_every and i % bad_every == bad_every - 1:
            out.append((False, bad[(i // bad_every) % len(bad)]))
        else:
            out.append((True, {"z": rng.standard_normal(latent_dim).round(4).tolist()}))
    return out


def percentiles(seconds: list[float]) -> tuple[float, float, float]:
    ms = np.asarray(seconds) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), float(ms.max())


def run_phase(url: str, requests: list, concurrency: int) -> dict:
    """Send ``requests`` through a pool of ``concurrency`` threads (1: one after another)."""
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        answers = list(pool.map(lambda r: post(url + "api/decode", r[1]), requests))
    wall = time.perf_counter() - start
    good = [a for (ok, _), a in zip(requests, answers) if ok]
    bad = [a for (ok, _), a in zip(requests, answers) if not ok]
    return {
        "wall": wall, "good": len(good), "bad": len(bad),
        "good_ok": sum(a[0] == 200 and a[2]["image"].startswith("data:image/png") for a in good),
        "bad_400": sum(a[0] == 400 and bool(a[2].get("error")) for a in bad),
        "client": percentiles([a[1] for a in good]), "server": percentiles([a[2]["ms"] / 1e3 for a in good]),
    }


def default_run(epochs: int) -> Path:
    cfg = vaekit.Config()
    cfg.training.epochs, cfg.training.progress = epochs, False
    return vaekit.train_run(cfg, out=Path(tempfile.mkdtemp(prefix="vaekit-explorer-load-")) / "digits")


def report(args, run: Path, info: dict, phases: dict[str, dict], load: tuple[float, ...]) -> str:
    lines = [
        "# vaekit serve under load", "",
        (f"`python bench/explorer_load.py{' ' + str(args.run) if args.run else ''} --requests {args.requests} "
        f"--concurrency {args.concurrency} --bad-every {args.bad_every}`, "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC"), "",
        (f"Machine: {machine()}; load average {' '.join(f'{v:.1f}' for v in load)} when the requests began "
        "(1, 5, 15 minutes; other work shares these cores)"), "",
        (f"Run: {info['data']}, latent_dim {info['latent_dim']}, model {json.dumps(vaekit.Config().model.hidden)} hidden "
        f"(the default MLP){'' if args.run else f', trained {args.epochs} epochs by the script'}. The server runs in "
        "its own process on 127.0.0.1 (uvicorn, one event loop, decodes on one worker thread); the client is a "
        "thread pool of urllib requests, each on a new connection."), "",
        ("| phase | requests (good + bad) | answered as expected | wall s | client p50 ms | client p99 ms | client max ms "
        "| server decode p50 ms | server decode p99 ms |"),
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, p in phases.items():
        expected = f"{p['good_ok']}/{p['good']} 200, {p['bad_400']}/{p['bad']} 400"
        lines.append(f"| {name} | {p['good']} + {p['bad']} | {expected} | {p['wall']:.2f} | "
                     f"{p['client'][0]:.1f} | {p['client'][1]:.1f} | {p['client'][2]:.1f} | "
                     f"{p['server'][0]:.2f} | {p['server'][1]:.2f} |")
    lines += ["", ("Client latency counts the time from sending to the whole answer, so in the concurrent phase it "
              "includes the wait behind the other requests (decodes run one at a time); the server's figure is the "
              "model call and the PNG encoding of one request.")]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", nargs="?", type=Path, help="a run folder (default: train the default digits model)")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=200, help="threads sending at once in the concurrent phase")
    parser.add_argument("--bad-every", type=int, default=10, help="every n-th request is malformed (0: none)")
    parser.add_argument("--epochs", type=int, default=30, help="epochs when the script trains the run")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "explorer_load.md")
    args = parser.parse_args()
    run = args.run or default_run(args.epochs)
    proc, url = start_server(run)
    try:
        with urllib.request.urlopen(url + "api/info", timeout=60) as response:
            info = json.loads(response.read())
        requests = bodies(args.requests, info["latent_dim"], args.bad_every)
        load = os.getloadavg()
        run_phase(url, requests[:20], 1)  # warm-up: first calls allocate and fill caches
        phases = {"one at a time": run_phase(url, requests, 1),
                  f"{args.concurrency} concurrent": run_phase(url, requests, args.concurrency)}
        with urllib.request.urlopen(url + "api/info", timeout=60) as response:
            assert response.status == 200, "the server stopped answering after the burst"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    failed = [n for n, p in phases.items() if p["good_ok"] != p["good"] or p["bad_400"] != p["bad"]]
    text = report(args, run, info, phases, load)
    args.out.write_text(text)
    print(text)
    if failed:
        raise SystemExit(f"unexpected answers in: {', '.join(failed)}")


if __name__ == "__main__":
    main()
