"""``vaekit report`` and ``vaekit serve``: a run folder as a page, and its latent space in the browser."""

from __future__ import annotations

from vaekit.apps.explorer import serve as serve_explorer
from vaekit.apps.molecules.jobs import is_sequence_run
from vaekit.apps.molecules.report import write_sequence_report
from vaekit.runs.report import write_report


def report(args) -> int:
    write = write_sequence_report if is_sequence_run(args.run) else write_report  # molecules are drawn by their app
    path = write(args.run, measure=not args.no_measure, compare=args.compare)
    print(f"wrote {path} (self-contained: open it in any browser)")
    return 0


def serve(args) -> int:
    serve_explorer(args.run, host=args.host, port=args.port, open_browser=args.open)
    return 0
