"""How long the command line takes to answer before any work: ``vaekit --help``, ``vaekit train --help``
and a mistyped flag, beside ``python -c "import torch"`` (what every command paid before the parser
stopped importing torch). Each is run ``--repeats`` times after one warm-up run; the median counts.

    python bench/cli_startup.py [--repeats 9] [--out bench/results/cli_startup.md]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path


def _vaekit() -> str:
    beside = Path(sys.executable).parent / "vaekit"  # the console script of this environment
    return str(beside) if beside.exists() else (shutil.which("vaekit") or "vaekit")


# name -> (argv, the exit status it must end with: 2 for the argument error, which must not train)
COMMANDS = {
    "vaekit --help": ([_vaekit(), "--help"], 0),
    "vaekit train --help": ([_vaekit(), "train", "--help"], 0),
    "vaekit train --epocs 3 (a mistyped flag)": ([_vaekit(), "train", "--epocs", "3"], 2),
    'python -c "import torch"': ([sys.executable, "-c", "import torch"], 0),
}


def _time(argv: list[str], expected: int, repeats: int) -> list[float]:
    subprocess.run(argv, capture_output=True, timeout=120)  # warm-up: file cache, .pyc files
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        seconds.append(time.perf_counter() - start)
        if done.returncode != expected:
            raise SystemExit(f"{' '.join(argv)} ended with {done.returncode}, not {expected}: {done.stderr[-300:]}")
    return seconds


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _report(times: dict[str, list[float]], repeats: int) -> str:
    torch_s = statistics.median(times['python -c "import torch"'])
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    lines = [
        "# Command-line start-up",
        "",
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; {_cpu()}, {os.cpu_count()} cores; "
        f"python {platform.python_version()}, torch {metadata.version('torch')}, vaekit {metadata.version('vaekit')}; "
        + (f"load average {load[0]:.2f} at the end (the machine was shared)." if load else ""),
        "",
        f"Wall time of each command, median of {repeats} runs after a warm-up (`python bench/cli_startup.py`).",
        "",
        "| command | median s | min s | max s | vs import torch |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, seconds in times.items():
        median = statistics.median(seconds)
        lines.append(f"| `{name}` | {median:.3f} | {min(seconds):.3f} | {max(seconds):.3f} | {median / torch_s:.2f}x |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9, help="timed runs per command (default 9)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "cli_startup.md"),
                        help="the Markdown report (default bench/results/cli_startup.md)")
    args = parser.parse_args()
    times = {name: _time(argv, expected, args.repeats) for name, (argv, expected) in COMMANDS.items()}
    report = _report(times, args.repeats)
    print(report)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(report)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
