"""`import zoo` and a model of one backend work when the other backend is not installed.

Each case runs in a fresh interpreter in which importing the missing backend raises ImportError, the
way it does on a machine where only `crystal-zoo[torch]` or only `crystal-zoo[jax]` is installed.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from tests.helpers import ROOT

BLOCK = """
import sys, importlib.abc
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == {missing!r} or name.startswith({missing!r} + ".") or name in {extra!r}:
            raise ImportError(f"blocked for the test: {{name}}")
sys.meta_path.insert(0, _Block())
"""

USE = {
    "torch": """
import numpy as np, torch
from pymatgen.core import Lattice, Structure
from zoo.backend.torch import to_torch
from zoo.graphs import build_graph, collate
s = Structure(Lattice.cubic(4.2), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
cfg = zoo.models.make_config("cgcnn")
g = build_graph(s, cfg.graph_spec())
model = zoo.models.build("cgcnn", "torch", cfg).eval()
out = model(to_torch(collate([g])))
assert out.shape == (1,) and torch.isfinite(out).all()
""",
    "jax": """
import numpy as np, jax
from pymatgen.core import Lattice, Structure
from zoo.backend.jax import to_jax
from zoo.graphs import build_graph, collate, pad_batch
s = Structure(Lattice.cubic(4.2), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
cfg = zoo.models.make_config("cgcnn")
g = build_graph(s, cfg.graph_spec())
module = zoo.models.build("cgcnn", "jax", cfg)
batch = to_jax(pad_batch(collate([g])))
variables = module.init(jax.random.PRNGKey(0), batch, train=False)
out = module.apply(variables, batch, train=False)
assert out.shape[0] == 2 and np.isfinite(np.asarray(out)).all()
""",
}


@pytest.mark.parametrize("present,missing", [("torch", "jax"), ("jax", "torch")])
def test_zoo_works_with_one_backend(present, missing):
    # e3nn / torch_geometric need torch; e3nn_jax / flax / optax need jax: block them with their backend.
    extra = {"jax": ("flax", "optax", "e3nn_jax", "jaxlib"), "torch": ("e3nn", "torch_geometric")}[missing]
    code = BLOCK.format(missing=missing, extra=extra) + textwrap.dedent(
        f"""
        import zoo, zoo.models, zoo.graphs; from zoo import tasks
        assert {missing!r} not in sys.modules
        assert not zoo.backend_available({missing!r}) and zoo.backend_available({present!r})
        assert "cgcnn" in zoo.models.list_models()
        assert "embedded_dielectric_iso" in tasks.list()
        try:
            zoo.models.build("cgcnn", {missing!r})
        except ImportError as exc:
            assert "crystal-zoo[{missing}]" in str(exc), exc
        else:
            raise AssertionError("building a model of the missing backend must fail with an install hint")
        """
    ) + USE[present] + f"\nassert {missing!r} not in sys.modules\nprint('ok')\n"
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stderr[-3000:]


# Imported by no torch run before its first epoch: the other backend and its libraries, the plotting library
# (plots are drawn after training), and the matbench / matminer / scikit-learn stack (the CGCNN atom table is
# located in matminer's folder, not imported). Each of them costs start-up time (seconds for some).
NOT_BEFORE_TRAINING = ("jax", "jaxlib", "flax", "optax", "e3nn_jax", "matplotlib", "matminer", "matbench", "sklearn", "e3nn",
                       "torch_geometric")

TRAIN_TORCH = """
import sys
from tests.helpers import TINY, toy_task
from zoo import tasks
import zoo.cli

task = toy_task()
tasks.register(task.spec, lambda: task)
seen = {{}}

def check(run_dir):
    seen["start"] = sorted(m for m in {names!r} if m in sys.modules)
    seen["torch"] = "torch" in sys.modules

train = zoo.cli.train
zoo.cli.train = lambda config=None, **kw: train(config, on_start=check, **kw)
sets = [a for k, v in TINY.items() for a in ("--set", f"{{k}}={{v}}")]
rc = zoo.cli.main(["train", "cgcnn", "--task", task.spec.name, "--backend", "torch", "--epochs", "1", "--no-progress",
                   "--no-graph-cache", "--out", {out!r}, *sets])
assert rc == 0, rc
print("loaded at the start of training:", seen["start"], "torch:", seen["torch"])
"""


def test_a_torch_training_imports_no_other_backend_plots_or_matbench_before_it_starts(tmp_path):
    code = TRAIN_TORCH.format(names=NOT_BEFORE_TRAINING, out=str(tmp_path / "runs"))
    env = {**os.environ, "ZOO_CACHE": str(tmp_path / "cache"), "OMP_WAIT_POLICY": "PASSIVE"}
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "loaded at the start of training: [] torch: True" in res.stdout, res.stdout[-2000:]


TRAIN_MATBENCH = """
import sys
from tests.helpers import TINY
import zoo.cli

seen = {{}}

def check(run_dir):
    seen["start"] = sorted(m for m in {names!r} if m in sys.modules)

train = zoo.cli.train
zoo.cli.train = lambda config=None, **kw: train(config, on_start=check, **kw)
sets = [a for k, v in TINY.items() for a in ("--set", f"{{k}}={{v}}")]
rc = zoo.cli.main(["train", "cgcnn", "--task", "matbench_jdft2d", "--data-dir", {data!r}, "--fold", "0", "--backend",
                   "torch", "--epochs", "1", "--no-progress", "--no-graph-cache", "--out", {out!r}, *sets])
assert rc == 0, rc
print("loaded at the start of training:", seen["start"])
"""


@pytest.mark.data
def test_a_training_on_a_matbench_task_imports_no_matbench_before_it_starts(tmp_path):
    # The folds and data are read from matbench's files; matbench itself (and the matminer / scikit-learn
    # stack it imports) is needed only to record and score, after training.
    from tests.helpers import SHARED_DATA

    pytest.importorskip("matbench")
    data = SHARED_DATA / "matbench_jdft2d"
    if not (data / "matbench_jdft2d.json.gz").exists():
        pytest.skip("../shared/data/matbench_jdft2d not available")
    code = TRAIN_MATBENCH.format(names=NOT_BEFORE_TRAINING, data=str(data), out=str(tmp_path / "runs"))
    env = {**os.environ, "ZOO_CACHE": str(tmp_path / "cache"), "OMP_WAIT_POLICY": "PASSIVE"}
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "loaded at the start of training: []" in res.stdout, res.stdout[-2000:]
