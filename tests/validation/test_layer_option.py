"""``python -m validation run --layer lru|s5|s4d|dense|mamba``: the chosen layer is the one trained."""

import json

import pytest

from validation.cli import main, layer_class, LAYER_CHOICES


def _results(path):
    return json.loads((path / "results.json").read_text())


@pytest.mark.parametrize("layer, cls", [("s5", "S5"), ("s4d", "S4D"), ("dense", "DenseLTI")])
def test_run_trains_and_compresses_the_chosen_layer(tmp_path, layer, cls, capsys):
    out = tmp_path / layer
    assert main(["run", "--preset", "tiny", "--layer", layer, "--methods", "full", "compressm",
                 "--steps", "6", "--events", "2", "--no-progress", "--no-figures", "--no-analysis",
                 "--out", str(out)]) == 0
    data = _results(out)
    assert data["layer"] == cls and layer_class(layer).__name__ == cls
    assert "--layer " + layer in data["command"]
    by = {r["method"]: r for r in data["runs"]}
    assert set(by) == {"full", "compressm"}
    assert by["full"]["final_sizes"] == [8]
    assert all(0 <= r["test_acc"] <= 1 for r in data["runs"])


def test_dense_refuses_methods_that_need_a_diagonal_layer(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "--preset", "tiny", "--layer", "dense", "--methods", "full", "compressm", "smallest",
              "--out", str(tmp_path / "d")])
    assert exc.value.code == 2
    assert "need a diagonal layer" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_unknown_layer_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--layer", "transformer"])
    assert "invalid choice" in capsys.readouterr().err
    assert set(LAYER_CHOICES) == {"lru", "s5", "s4d", "dense", "mamba"}


def test_mamba_experiment_records_every_method(tmp_path, capsys):
    pytest.importorskip("mambapy")
    out = tmp_path / "mamba"
    assert main(["run", "--preset", "tiny", "--layer", "mamba", "--h", "8", "--steps", "6", "--seeds", "0",
                 "--no-progress", "--out", str(out)]) == 0
    data = _results(out)
    by = {r["method"]: r for r in data["runs"]}
    assert set(by) == {"full", "hankel", "magnitude", "random", "small"}
    assert by["full"]["d_state"] == 16
    assert all(by[m]["d_state"] == 8 for m in ("hankel", "magnitude", "random", "small"))
    for m in ("hankel", "magnitude", "random"):
        assert by[m]["calibration_change"] >= 0 and by[m]["held_out_change"] >= 0
        assert 0 <= by[m]["test_acc_at_cut"] <= 1
    assert "| hankel | 8 |" in (out / "results.md").read_text()
