"""``latency: {verify: N}``: after the search the top N nets are timed whole on the table's backend (ORT
here), recorded beside the prediction in verify.json, pareto.csv, summary.json and the plot; a rerun
measures nothing again; a backend out of reach is one line and keeps the search's results."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import optuna
import pytest
import torch
import yaml

from nas.cli import main
from nas.errors import ConfigError
from nas.latency import validate
from nas.search import runner
from nas.search.config import experiment_from, load_experiment
from nas.search.final import FinalRecord, FinalTrial
from nas.search.report import verified_points
from nas.search.runner import run_experiment
from nas.search.summary import SearchSummary, TrialRow, read_summary
from nas.search.verified import VerifiedNet, make_record, order_changed, read_verified
from nas.search.verify import choose, verify_run

ROOT = Path(__file__).resolve().parents[1]
TABLE = str(ROOT / "latency_tables" / "dev-epyc-2core" / "mnasnet_small-28.json")  # ORT, 1 thread


pytestmark = pytest.mark.usefixtures("single_thread")  # conftest's: one torch thread


@pytest.fixture(autouse=True)
def quiet_search(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    monkeypatch.setattr(runner, "reference_metrics", lambda config: {})  # the plot's references: not here


def write_experiment(tmp_path: Path, verify: int) -> Path:
    """A pareto search over two cheap metrics (nothing trained): faster, and more parameters."""
    data = {
        "name": "verify-test",
        "space": "mnasnet_small",
        "mode": "pareto",
        "objectives": [{"metric": "latency_ms"}, {"metric": "params", "direction": "maximize"}],
        "latency": {"table": TABLE, "verify": verify},
        "strategy": {"name": "random"},
        "trials": 5,
        "seed": 3,
        "workers": 1,
        "out": str(tmp_path / "run"),
    }
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def searched(tmp_path_factory) -> Path:
    """A finished search with verify 0, searched once for the module; it never measures."""
    root = tmp_path_factory.mktemp("searched")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(runner, "reference_metrics", lambda config: {})
        patch.setattr(validate, "measure_nets", lambda *a, **k: pytest.fail("measured"))
        run_experiment(load_experiment(write_experiment(root, 0)))
    torch.set_num_threads(threads)
    return root / "run"


def copy_of(searched: Path, tmp_path: Path) -> Path:
    """The finished search in ``tmp_path/run`` (its storage follows ``out``)."""
    shutil.copytree(searched, tmp_path / "run")
    return tmp_path / "run"


def pareto_rows(run: Path) -> list[dict[str, str]]:
    return list(csv.DictReader((run / "pareto.csv").open()))


def test_verify_0_measures_nothing(searched):
    assert not (searched / "verify.json").exists()
    assert "verify" not in json.loads((searched / "summary.json").read_text())
    assert "measured_latency_ms" not in pareto_rows(searched)[0]


def test_the_top_nets_are_measured_recorded_printed_and_not_measured_twice(
    searched, tmp_path, capsys, monkeypatch
):
    copy_of(searched, tmp_path)
    rc = main(["search", str(write_experiment(tmp_path, 2))])  # verify added to the finished search
    stdout, err = capsys.readouterr()
    assert rc == 0, err
    run = tmp_path / "run"
    summary = json.loads((run / "summary.json").read_text())
    verify = summary["verify"]
    assert len(summary["pareto"]) >= 2 and len(verify["nets"]) == 2
    assert verify["backend"] == "ort" and verify["rank_by"] == "latency_ms"
    for net in verify["nets"]:
        assert net["measured_ms"] > 0 and net["predicted_ms"] > 0
        assert net["ratio"] == pytest.approx(net["measured_ms"] / net["predicted_ms"])
    predicted = [n["predicted_ms"] for n in verify["nets"]]
    assert predicted == sorted(predicted)  # the front's fastest first
    assert verify["order_changed"] == order_changed(predicted, [n["measured_ms"] for n in verify["nets"]])
    measured = [r for r in pareto_rows(run) if r["measured_latency_ms"]]
    assert len(measured) == 2 and all(float(r["measured_latency_ms"]) > 0 for r in measured)
    assert {int(r["number"]) for r in measured} == {n["number"] for n in verify["nets"]}
    assert "verified: the top 2 by latency_ms" in stdout and "Kendall tau" in stdout
    assert ("warning:" in stdout) == verify["order_changed"]
    assert (run / "pareto.png").is_file()

    def no_timing(*args, **kwargs):
        raise AssertionError("measured again")

    monkeypatch.setattr(validate, "measure_nets", no_timing)
    record = read_verified(run)
    assert main(["search", str(write_experiment(tmp_path, 2))]) == 0  # the finished search, rerun
    assert read_verified(run) == record and read_summary(run).verify == record
    assert len([r for r in pareto_rows(run) if r["measured_latency_ms"]]) == 2


def test_a_backend_out_of_reach_is_one_line_and_keeps_the_results(searched, tmp_path, capsys, monkeypatch):
    run = copy_of(searched, tmp_path)

    def unreachable(provenance):
        raise ConfigError("cannot reach TVM RPC tracker at 127.0.0.1:9190: connection refused")

    monkeypatch.setattr(validate, "backend_from_provenance", unreachable)
    rc = main(["search", str(write_experiment(tmp_path, 2))])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "latency.verify: cannot reach TVM RPC tracker" in err and "results" in err
    assert read_summary(run).verify is None and len(read_summary(run).pareto) >= 1
    assert not (run / "verify.json").exists()
    monkeypatch.setattr(validate, "measure_nets", lambda table, archs: dict.fromkeys(archs, 1.0))
    assert len(verify_run(run, 2).nets) == 2  # the board back: verified without searching again


@pytest.mark.extra("tvm")
def test_verify_on_a_loopback_rpc_server(searched, tmp_path):
    """A table whose provenance names a board over TVM RPC: the finalist is timed there."""
    from test_latency_tvm import free_port, retry, start, stop

    run = copy_of(searched, tmp_path)
    port = free_port()
    server = start(
        "tvm.exec.rpc_server", "--host", "127.0.0.1", "--port", str(port), "--port-end", str(port + 1)
    )
    try:
        table = json.loads(Path(TABLE).read_text())
        rpc = {"backend": "tvm-rpc", "rpc": {"host": "127.0.0.1", "port": port, "key": None}}
        table["provenance"] |= rpc
        table["anchor"]["arch"] = "conv_k3_s2_c8:ds_k3_c8:head"  # a tiny anchor compiles in a moment
        (tmp_path / "rpc.json").write_text(json.dumps(table))
        config = yaml.safe_load((run / "config.yaml").read_text())
        config["latency"]["table"] = str(tmp_path / "rpc.json")
        (run / "config.yaml").write_text(yaml.safe_dump(config))
        record = retry(lambda: verify_run(run, 1))  # ConfigError (a ValueError) until the server is up
    finally:
        stop(server)
    assert record.backend == "tvm-rpc" and len(record.nets) == 1 and record.nets[0].measured_ms > 0
    assert read_summary(run).verify == record


@pytest.mark.parametrize("value", [-1, "two", 1.5])
def test_a_bad_verify_value_is_a_config_error(value):
    with pytest.raises(ConfigError, match=r"latency\.verify"):
        experiment_from({"name": "x", "space": "mnasnet_small", "latency": {"table": TABLE, "verify": value}})


def test_verify_defaults_to_off_and_does_not_change_the_experiment(tmp_path):
    config = experiment_from({"name": "x", "space": "mnasnet_small", "latency": {"table": TABLE}})
    assert config.latency is not None and config.latency.verify == 0
    out = tmp_path / "run"
    runner.record_config(config, out)
    again = experiment_from({**config.model_dump(mode="json"), "latency": {"table": TABLE, "verify": 3}})
    runner.check_run_dir(again, out)  # verifying a finished search is no other experiment


@pytest.mark.parametrize(
    ("predicted", "measured", "changed"),
    [
        ([1.0, 2.0, 3.0], [1.5, 2.5, 3.5], False),  # slower everywhere, same order
        ([1.0, 2.0, 3.0], [1.0, 3.5, 3.0], True),  # the last two swap
        ([3.0, 1.0, 2.0], [0.9, 0.1, 0.5], False),  # any order of listing
        ([1.0, 1.0, 2.0], [1.2, 1.0, 2.0], False),  # a tie on one side is no change
        ([1.0], [5.0], False),
    ],
)
def test_order_changed_on_planted_numbers(predicted, measured, changed):
    assert order_changed(predicted, measured) is changed
    nets = [
        VerifiedNet(number=i, arch=f"a{i}", predicted_ms=p, measured_ms=m)
        for i, (p, m) in enumerate(zip(predicted, measured, strict=True))
    ]
    record = make_record(nets, table="t.json", backend="ort", rank_by="reward")
    assert record.order_changed is changed
    assert (record.kendall_tau is None) == (len(nets) < 2)


def test_finalists_come_first_then_the_reward():
    rows = [
        TrialRow(
            number=i,
            state="COMPLETE",
            arch=f"conv_k3_s2_c8:ir_k{k}_e2_c16:head",
            reward=r,
            feasible=True,
            params=p,
        )
        for i, (k, r, p) in enumerate([(3, -1, 1), (5, -2, 2), (7, -3, 3)])
    ]
    summary = SearchSummary(dataset="synthetic", trials=rows, pareto=rows)
    config = experiment_from(
        {
            "name": "x",
            "space": "mnasnet_small",
            "latency": {"table": TABLE},
            "reward": {"type": "weighted_sum", "weights": {"params": -1}},
        }
    )
    assert [r["number"] for r in choose(summary, config, None)[1]] == [0, 1, 2]
    finalist = FinalTrial(
        number=2,
        arch=rows[2].arch,
        search_rank=3,
        final_rank=1,
        seeds=[0],
        dirs=[],
        val={},
        val_std={},
        test={},
        test_std={},
    )
    final = FinalRecord(top=1, seeds=1, epochs=1, rank_by="reward", train_config={}, trials=[finalist])
    rank_by, chosen = choose(summary, config, final)
    assert rank_by == "final rank, then reward" and [r["number"] for r in chosen] == [2, 0, 1]


def test_measured_points_are_drawn_where_latency_is_an_axis():
    record = make_record(
        [VerifiedNet(number=0, arch="a", predicted_ms=1.0, measured_ms=1.5)],
        table="t",
        backend="ort",
        rank_by="r",
    )
    rows = [{"number": 0, "arch": "a", "latency_ms": 1.0, "val_auc": 0.9, "params": 10.0}]
    assert verified_points(rows, record, "latency_ms", "val_auc") == [
        {"x": 1.0, "y": 0.9, "measured_x": 1.5, "measured_y": 0.9}
    ]
    assert verified_points(rows, record, "params", "val_auc") == []


def test_nas_verify_measures_a_finished_run_with_the_default_top(searched, tmp_path, capsys):
    run = copy_of(searched, tmp_path)
    assert main(["verify", str(run), "--top", "2"]) == 0
    assert "verified: the top 2 by latency_ms" in capsys.readouterr().out
    assert len(read_verified(run).nets) == 2
    assert len(json.loads((run / "summary.json").read_text())["verify"]["nets"]) == 2
    assert main(["verify", str(run)]) == 0  # the experiment asked for none: the default, 5 (or the front)
    assert len(read_verified(run).nets) == min(5, len(read_summary(run).pareto))


def test_nas_verify_refuses_a_bad_top_and_writes_nothing(searched, tmp_path, capsys):
    run = copy_of(searched, tmp_path)
    before = sorted(p.name for p in run.iterdir())
    assert main(["verify", str(run), "--top", "0"]) == 2
    assert "--top must be >= 1, got 0" in capsys.readouterr().err
    assert main(["verify", str(run), "--top", "x"]) == 2
    assert "invalid int value" in capsys.readouterr().err
    assert sorted(p.name for p in run.iterdir()) == before


def test_nas_verify_on_no_run_is_one_line(tmp_path, capsys):
    assert main(["verify", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert "has no experiment record" in err and "Traceback" not in err and len(err.splitlines()) == 1
