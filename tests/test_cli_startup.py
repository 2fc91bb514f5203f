"""The command line answers --help, --version and argument errors without importing the heavy
libraries (torch alone takes seconds to import): the parser is built from the standard library
and vaekit.config. The time itself is measured by bench/cli_startup.py, not asserted here."""

import subprocess
import sys

import pytest

HEAVY = ("torch", "numpy", "sklearn", "pandas", "matplotlib")

PROBE = """
import sys
from vaekit.cli.main import main
try:
    code = main({argv!r})
except SystemExit as exc:
    code = exc.code
loaded = [m for m in {heavy!r} if m in sys.modules]
print("LOADED", ",".join(loaded))
print("CODE", code)
"""


def _probe(argv):
    out = subprocess.run([sys.executable, "-c", PROBE.format(argv=argv, heavy=HEAVY)], capture_output=True, text=True,
                         timeout=120)
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines() if line.startswith(("LOADED", "CODE")))
    return lines["LOADED"].strip(), int(lines["CODE"]), out


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["eval", "--help"], ["--version"],
                                  ["train", "--bogus", "1"], ["sample"], ["eval", "RUN", "--split", "dev"]])
def test_parsing_imports_no_heavy_library(argv):
    loaded, code, out = _probe(argv)
    assert loaded == "", f"{argv} imported {loaded}"
    assert code in (0, 2), out.stderr
    if code == 2:  # an argument error: one line on stderr
        assert out.stderr.startswith("vaekit: error:") and len(out.stderr.strip().splitlines()) == 1


def test_version_names_the_package_version(capsys):
    import vaekit
    from vaekit.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith(f"vaekit {vaekit.__version__} (torch ")
