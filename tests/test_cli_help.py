"""Every subcommand's help: a readable metavar, help text for every positional and option, and
the defaults, read from the config dataclasses for the flags that set config keys."""

import argparse
import re

import pytest

from vaekit.cli.flags import TRAIN_FLAGS, default_text
from vaekit.cli.main import COMMANDS, main
from vaekit.cli.parser import build_parser
from vaekit.config import Config


def _subparsers():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


def test_every_command_is_dispatched_and_has_help():
    assert set(_subparsers()) == set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_argument_has_help_and_a_readable_metavar(name):
    for action in _subparsers()[name]._actions:
        assert action.help, f"{name}: {action.dest} has no help"
        assert "." not in str(action.metavar or ""), f"{name}: {action.option_strings} shows {action.metavar}"
        if action.option_strings and action.nargs != 0 and action.choices is None:
            assert action.metavar, f"{name}: {action.option_strings} has no metavar"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_takes_no_progress(name):
    assert "--no-progress" in _subparsers()[name]._option_string_actions


def test_train_help_shows_config_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    cfg = Config()
    assert f"(default: {cfg.training.lr:g})" in text and f"(default: {cfg.model.latent_dim})" in text
    assert "digits 398" in text  # epochs: None means decided at run time, and the help says how
    assert not re.search(r"\b[A-Z]+\.[A-Z_]+\b", text), "a metavar such as DATA.NAME is shown"
    for flag in TRAIN_FLAGS:
        assert flag.flag in text and f"(default: {default_text(flag.key)})" in text


def test_defaults_are_read_from_the_config(monkeypatch):
    from vaekit.cli import flags

    changed = Config()
    changed.training.lr, changed.model.hidden = 0.125, (7, 5)
    monkeypatch.setattr(flags, "Config", lambda: changed)
    assert default_text("training.lr") == "0.125" and default_text("model.hidden") == "7,5"


@pytest.mark.parametrize("name", ["sample", "interpolate", "traverse", "impute", "synth", "score"])
def test_option_defaults_are_shown(name, capsys):
    with pytest.raises(SystemExit):
        main([name, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: " in text


def test_an_abbreviated_flag_is_an_error_not_a_guess(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--epoch", "3"])  # argparse's default would read this as --epochs 3 and train
    assert exc.value.code == 2 and "--epoch" in capsys.readouterr().err
