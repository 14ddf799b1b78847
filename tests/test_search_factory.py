"""An experiment whose latency table was built for another data shape is refused before anything is
written, with the command that builds the right table."""

from __future__ import annotations

import yaml
from medmnist_data import write_npz

from nas import cli

TABLE = "latency_tables/dev-epyc-2core/mnasnet_small-28.json"  # 1 channel, 2 classes


def test_a_table_for_another_shape_names_the_command_that_fixes_it(tmp_path, capsys):
    data = write_npz(tmp_path / "fundus.npz", channels=3)
    experiment = {
        "name": "fundus",
        "space": "mnasnet_small",
        "dataset": {"path": str(data)},
        "input_size": 28,
        "latency": {"table": TABLE},
        "training": {"epochs": 1},
        "trials": 1,
        "out": str(tmp_path / "run"),
    }
    (tmp_path / "fundus.yaml").write_text(yaml.safe_dump(experiment))
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
