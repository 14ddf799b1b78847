"""An experiment whose latency table was built for another data shape is refused before anything is
written, with the command that builds the right table."""

from __future__ import annotations

import torch
import yaml
from medmnist_data import experiment_dict, write_experiment, write_npz

from nas import cli
from nas.search.config import load_experiment
from nas.search.runner import record_config

TABLE = "latency_tables/dev-epyc-2core/mnasnet_small-28.json"  # 1 channel, 2 classes


def test_a_table_for_another_shape_names_the_command_that_fixes_it(tmp_path, capsys):
    data = write_npz(tmp_path / "fundus.npz", channels=3)
    experiment = experiment_dict(data, tmp_path / "run", latency={"table": TABLE})
    write_experiment(tmp_path / "fundus.yaml", experiment)
    assert cli.main(["search", str(tmp_path / "fundus.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"build it with 'nas latency build --from {TABLE} --in-chans 3 --num-classes 2'" in err
    assert "set latency.table to latency_tables/dev-epyc-2core/mnasnet_small-28-3ch-2cls.json" in err
    assert not (tmp_path / "run").exists()  # refused: nothing written, a fixed rerun is not refused

    experiment |= {"input_size": 32, "dataset": {"path": str(write_npz(tmp_path / "big.npz", size=32))}}
    (tmp_path / "big.yaml").write_text(yaml.safe_dump(experiment))
    assert cli.main(["search", str(tmp_path / "big.yaml")]) == 2
    err = capsys.readouterr().err
    assert (
        "'nas latency build --space mnasnet_small --input-size 32 --in-chans 1 --num-classes 2 "
        "--device dev-epyc-2core --backend ort --threads 1'" in err
    )


def test_a_storage_or_device_that_cannot_be_used_is_refused_before_anything_is_written(tmp_path, capsys):
    """A typo in --storage, a run whose study file is not a database, or a device this machine lacks:
    one line, and the run's config.yaml neither written nor rewritten."""
    experiment = experiment_dict(write_npz(tmp_path / "xray.npz", sizes=(16, 8, 8)), tmp_path / "run")
    write_experiment(tmp_path / "x.yaml", experiment)

    def refused(*flags: str) -> str:
        assert cli.main(["search", str(tmp_path / "x.yaml"), *flags]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err, err
        return err

    assert "cannot open storage notaurl" in refused("--storage", "notaurl")
    assert not (tmp_path / "run").exists()
    if not torch.cuda.is_available():
        on_cuda = experiment | {"training": {"epochs": 1, "device": "cuda:1"}}
        write_experiment(tmp_path / "cuda.yaml", on_cuda)
        assert cli.main(["search", str(tmp_path / "cuda.yaml")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "device 'cuda:1': this machine has 0 CUDA GPU(s)" in err, err
        assert not (tmp_path / "run").exists()
    record_config(load_experiment(str(tmp_path / "x.yaml")), tmp_path / "run")  # an earlier run's record
    record = (tmp_path / "run" / "config.yaml").read_text() + "# kept as it was\n"
    (tmp_path / "run" / "config.yaml").write_text(record)
    (tmp_path / "run" / "study.db").write_text("not a database")
    assert "cannot open storage sqlite:///" in refused()
    assert (tmp_path / "run" / "config.yaml").read_text() == record
