"""``vaekit impute`` and ``vaekit synth``: completing and generating rows (and images, for impute)."""

from __future__ import annotations

from vaekit.apps.impute import impute_file
from vaekit.apps.tabular.synthesizer import TabularVAE
from vaekit.cli.console import progress_wanted
from vaekit.cli.output import out_path
from vaekit.errors import ConfigError


def impute(args) -> int:
    out, picture = impute_file(args.run, args.data, args.out, method=args.method, num_iter=args.iters, seed=args.seed,
                               progress=progress_wanted(args))
    shown = f"; picture: {picture}" if picture else ""
    print(f"wrote {out} (missing cells filled by method={args.method}{shown})")
    return 0


def _conditions(items: list[str]) -> dict[str, str]:
    conditions = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--condition {item!r} is not of the form COLUMN=VALUE")
        key, value = item.split("=", 1)
        conditions[key] = value
    return conditions


def synth(args) -> int:
    if args.n < 1:
        raise ConfigError("-n must be at least 1")
    conditions = _conditions(args.condition)
    out = out_path(args, "synthetic.csv")
    if out.suffix != ".csv":
        raise ConfigError(f"--out {out}: synthetic tables are written as .csv")
    model = TabularVAE.load(args.run)
    table = model.sample(args.n, conditions=conditions or None, seed=args.seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    print(f"wrote {out} ({len(table)} rows x {table.shape[1]} columns)")
    return 0
