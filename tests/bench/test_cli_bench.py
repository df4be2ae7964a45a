"""``zoo bench`` and ``zoo bench gate`` wiring: options reach zoo.bench, outputs land, exit statuses and
one line per gate violation (measurements replaced by synthetic numbers: no clock in a unit test)."""
from __future__ import annotations

import json

import pytest

from zoo.bench import gate, run
from zoo.cli import main

from .test_table import ROWS


def _baseline(tmp_path):
    path = tmp_path / "gate_baseline.json"
    path.write_text(json.dumps({"entries": {
        "cgcnn/torch": {"train_ratio": 2.0, "infer_ratio": 1.0, "mae_seeds": [3.0, 3.1, 2.9]},
        "cgcnn/jax": {"train_ratio": 1.0, "infer_ratio": 0.5, "mae_seeds": [3.0, 3.2, 3.1]}}}))
    return path


def _fake_measure(seen, slow=1.0):
    def measure_all(models=None, backends=("torch", "jax"), seed=0, plant=None, symmetry=True, log=print):
        seen.append({"models": models, "plant": plant, "seed": seed})
        k = 2.0 if plant == "cgcnn:torch" else 1.0
        return {"cgcnn/torch": {"train_ratio": 2.0 * slow + seed, "infer_ratio": 1.0 * k, "mae": 3.0 + 0.1 * seed,
                                "equivariance_f64": 1e-15, "parity_f64": 1e-15, "floor_mae": 5.0, "parameters": 10},
                "cgcnn/jax": {"train_ratio": 1.0, "infer_ratio": 0.5, "mae": 3.1, "equivariance_f64": 1e-15,
                              "floor_mae": 5.0, "parameters": 10}}
    return measure_all


def test_bench_help_and_an_unknown_family(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "--help"])
    assert exc.value.code == 0 and "--models" in capsys.readouterr().out
    assert main(["bench", "--models", "cgcnx"]) == 1
    assert "cgcnn" in capsys.readouterr().err  # did-you-mean


def test_bench_writes_the_table_and_fails_on_a_failed_row(tmp_path, monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(run, "run_matrix", lambda *a, **k: calls.append((a, k)) or [dict(r) for r in ROWS])
    code = main(["bench", "--models", "cgcnn", "tfn", "--backends", "torch", "--epochs", "2", "--task-arg", "n_crystals=50",
                 "--no-symmetry", "--out", str(tmp_path)])
    assert code == 1  # the pgnet row failed
    (models, backends, epochs, task_kwargs), kw = calls[0]
    assert models == ["cgcnn", "tfn"] and backends == ["torch"] and epochs == 2 and task_kwargs == {"n_crystals": 50}
    assert kw["symmetry"] is False
    out = capsys.readouterr().out
    assert "train str/s" in out and "failed: pgnet/jax" in out
    assert {p.name for p in tmp_path.iterdir()} >= {"bench.json", "bench.md", "bench.png"}
    meta = json.loads((tmp_path / "bench.json").read_text())["meta"]
    assert len(meta["load_average_1_5_15_at_start"]) == 3 and len(meta["machine"]["load_average_1_5_15"]) == 3


def test_gate_without_a_baseline_says_how_to_make_one(tmp_path, capsys):
    assert main(["bench", "gate", "--baseline", str(tmp_path / "none.json")]) == 2
    err = capsys.readouterr().err
    assert "none.json" in err and "--update-baseline" in err


def test_gate_passes_unchanged_and_fails_with_one_line_per_violation(tmp_path, monkeypatch, capsys):
    seen = []
    base = _baseline(tmp_path)
    monkeypatch.setattr(gate, "measure_all", _fake_measure(seen))
    assert main(["bench", "gate", "--baseline", str(base)]) == 0
    out = capsys.readouterr().out
    assert "passed" in out
    # only the families the baseline covers are measured; the others are named as not gated
    assert seen[-1]["models"] == ["cgcnn"]
    assert "note: tfn/torch: not gated" in out and "note: cgcnn/torch" not in out

    # the planted hook reaches the measurement, and its 2x inference slowdown is caught
    assert main(["bench", "gate", "--baseline", str(base), "--plant", "cgcnn:torch", "--json", str(tmp_path / "g.json")]) == 1
    assert seen[-1]["plant"] == "cgcnn:torch"
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("GATE FAILED")]
    assert len(err) == 1 and "cgcnn/torch: inference throughput fell 2.00x" in err[0]
    record = json.loads((tmp_path / "g.json").read_text())
    assert record["growth"]["cgcnn/torch"]["infer"] == pytest.approx(2.0) and record["violations"]

    monkeypatch.setattr(gate, "measure_all", _fake_measure(seen, slow=3.0))
    assert main(["bench", "gate", "--baseline", str(base)]) == 1
    assert "training throughput fell 3.00x" in capsys.readouterr().err


def test_gate_rejects_a_malformed_plant(tmp_path):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "gate", "--baseline", str(_baseline(tmp_path)), "--plant", "cgcnn"])
    assert exc.value.code == 2


def test_update_baseline_stores_median_ratios_and_every_seeds_mae(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(gate, "measure_all", _fake_measure(seen))
    path = tmp_path / "b.json"
    assert main(["bench", "gate", "--update-baseline", "--seeds", "3", "--baseline", str(path)]) == 0
    assert [s["seed"] for s in seen] == [0, 1, 2]
    entry = json.loads(path.read_text())["entries"]["cgcnn/torch"]
    # the median over the seeds' runs: one outlier run does not set the reference
    assert entry["train_ratio"] == 3.0 and entry["train_ratios"] == [2.0, 3.0, 4.0]
    assert entry["mae_seeds"] == pytest.approx([3.0, 3.1, 3.2])
    assert json.loads(path.read_text())["settings"]["factor"] == gate.FACTOR


def test_a_burst_is_remeasured_and_a_persistent_slowdown_still_fails(tmp_path, monkeypatch, capsys):
    base, seen = _baseline(tmp_path), []
    steady = _fake_measure(seen)
    slow = _fake_measure(seen, slow=3.0)
    calls = iter([slow, steady])  # first measurement slow (a neighbour's burst), the re-measurement not
    monkeypatch.setattr(gate, "measure_all", lambda *a, **k: next(calls)(*a, **k))
    assert main(["bench", "gate", "--baseline", str(base), "--json", str(tmp_path / "g.json")]) == 0
    assert seen[-1]["models"] == ["cgcnn"]
    record = json.loads((tmp_path / "g.json").read_text())
    assert record["current"]["cgcnn/torch"]["first_try"]["train_ratio"] == 6.0

    monkeypatch.setattr(gate, "measure_all", slow)  # slow both times: a real slowdown
    assert main(["bench", "gate", "--baseline", str(base)]) == 1
    assert "training throughput fell 3.00x" in capsys.readouterr().err


def test_machine_key_names_one_file_per_cpu_model():
    assert gate.machine_key("AMD EPYC") == "amd-epyc"
    assert gate.machine_key("Intel(R) Xeon(R) Processor") == "intel-r-xeon-r-processor"
    assert gate.machine_key("***") == "unknown-cpu"
    assert gate.machine_key() == gate.machine_key(gate.provenance.cpu_model())  # default: this machine


def test_choose_baseline_prefers_this_cpus_file_and_falls_back_to_another(tmp_path):
    with pytest.raises(FileNotFoundError, match="--update-baseline"):
        gate.choose_baseline(tmp_path, cpu="AMD EPYC")
    (tmp_path / "intel-r-xeon-r-processor.json").write_text("{}")
    assert gate.choose_baseline(tmp_path, cpu="AMD EPYC") == (tmp_path / "intel-r-xeon-r-processor.json", False)
    (tmp_path / "amd-epyc.json").write_text("{}")
    assert gate.choose_baseline(tmp_path, cpu="AMD EPYC") == (tmp_path / "amd-epyc.json", True)


def _with_cpu(path, cpu):
    record = json.loads(path.read_text())
    record["machine"] = {"machine": {"cpu": cpu}}
    path.write_text(json.dumps(record))
    return path


def test_another_cpus_baseline_gates_throughput_only_at_the_cross_machine_factor(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(gate.provenance, "cpu_model", lambda: "Intel(R) Xeon(R) Processor")
    seen = []
    # 3x slower training ratio than the baseline: the spread measured between two CPUs for unchanged code
    monkeypatch.setattr(gate, "measure_all", _fake_measure(seen, slow=3.0))
    other = _with_cpu(_baseline(tmp_path), "AMD EPYC")
    assert main(["bench", "gate", "--baseline", str(other)]) == 0
    out = capsys.readouterr().out
    assert f"factor {gate.CROSS_MACHINE_FACTOR:g}" in out and "has no baseline" in out and "intel-r-xeon-r-processor.json" in out
    # the same figures against this CPU's own baseline fail at 1.5x
    own = _with_cpu(_baseline(tmp_path), "Intel(R) Xeon(R) Processor")
    assert main(["bench", "gate", "--baseline", str(own)]) == 1
    assert "training throughput fell 3.00x" in capsys.readouterr().err
    # a gross regression still fails across CPUs
    monkeypatch.setattr(gate, "measure_all", _fake_measure(seen, slow=7.0))
    assert main(["bench", "gate", "--baseline", str(_with_cpu(_baseline(tmp_path), "AMD EPYC"))]) == 1


def test_default_baseline_is_this_cpus_file_and_update_writes_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(gate.provenance, "cpu_model", lambda: "AMD EPYC")
    monkeypatch.setattr(gate, "BASELINES", tmp_path)
    assert main(["bench", "gate"]) == 2
    assert "--update-baseline" in capsys.readouterr().err
    monkeypatch.setattr(gate, "measure_all", _fake_measure([]))
    assert main(["bench", "gate", "--update-baseline", "--seeds", "2"]) == 0
    assert (tmp_path / "amd-epyc.json").is_file()
    assert main(["bench", "gate"]) == 0
    assert "baseline amd-epyc.json, factor 1.5" in capsys.readouterr().out
