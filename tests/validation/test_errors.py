import sys

import pytest

from validation.cli import main
from validation.errors import ConfigError, UnknownPresetError, UnknownDatasetError
from validation.presets import get_preset, validate, event_steps


def test_unknown_preset():
    with pytest.raises(UnknownPresetError, match="choose one of: tiny"):
        get_preset("huge")


@pytest.mark.parametrize("tau", [0.0, 1.0, -0.1, 1.5])
def test_tau_outside_unit_interval(tau):
    with pytest.raises(ConfigError, match="strictly between 0 and 1"):
        validate(get_preset("tiny").replace(taus=(tau,)))


@pytest.mark.parametrize("events", [(0, 3), (5, 12), (3, 40)])
def test_events_outside_the_run(events):
    with pytest.raises(ConfigError, match=r"outside the run.*\[1, 11\]"):
        validate(get_preset("tiny").replace(events=events))


def test_event_window_is_inside_the_first_tenth():
    cfg = get_preset("demo")
    ev = event_steps(cfg)
    assert len(ev) == cfg.n_events and max(ev) <= 0.1 * cfg.steps and min(ev) >= 1


def test_other_bad_configs():
    with pytest.raises(UnknownDatasetError):
        validate(get_preset("tiny").replace(dataset="imagenet"))
    with pytest.raises(ConfigError, match="add 'compressm'"):
        validate(get_preset("tiny").replace(methods=("full", "small")))
    with pytest.raises(ConfigError, match="unknown method"):
        validate(get_preset("tiny").replace(methods=("full", "lora")))


@pytest.mark.parametrize("argv, message", [
    (["run", "--preset", "huge"], "unknown preset 'huge'"),
    (["run", "--preset", "tiny", "--dataset", "imagenet"], "unknown dataset 'imagenet'"),
    (["run", "--preset", "tiny", "--tau", "1.2"], "strictly between 0 and 1"),
    (["run", "--preset", "tiny", "--tau", "abc"], "tau must be a number"),
    (["run", "--preset", "tiny", "--events", "3", "50"], "outside the run"),
    (["demo", "--steps", "0"], "positive integer"),
])
def test_cli_bad_input_is_an_argparse_error(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_missing_optional_package(monkeypatch, capsys, tmp_path, no_network):
    monkeypatch.setitem(sys.modules, "aeon", None)
    monkeypatch.setitem(sys.modules, "aeon.datasets", None)
    with pytest.raises(SystemExit) as info:
        main(["run", "--preset", "tiny", "--dataset", "ucr-gunpoint", "--out", str(tmp_path), "--no-progress"])
    assert info.value.code == 2
    assert "pip install lti-reduce[ucr]" in capsys.readouterr().err


def test_cli_help_and_list(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "mnist1d" in out and "scifar" in out and "compressm" in out
