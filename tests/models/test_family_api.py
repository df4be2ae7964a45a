"""A model family is one folder plus one registration: a family defined here, outside the package, through
the public API only (a config with ``@register_family``, the math once, a torch module and a flax module
that only declare parameters), trains for one epoch in both backends and reloads its weights in the
other backend, touching no file of crystal-zoo. The README's "Adding a model family" section is this
file's skeleton."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pytest

from tests.helpers import toy_task
from zoo.graphs import GraphSpec
from zoo.models import FAMILIES, get_family, list_models, register_family
from zoo.nn.functional import gaussian_expansion, masked_segment_mean

torch = pytest.importorskip("torch")
flax_nn = pytest.importorskip("flax.linen")

from zoo.backend import jax as xp_jax  # noqa: E402
from zoo.backend import torch as xp_torch  # noqa: E402


# ----------------------------------------------------------------------------- config: the family
@dataclass(frozen=True)
class ToyConfig:
    """A minimal invariant model: species embedding, one distance-weighted neighbour mean, a linear head."""

    width: int = 8
    radius: float = 6.0

    def graph_spec(self) -> GraphSpec:
        return GraphSpec(rule="cgcnn", radius=self.radius, max_neighbors=12)

    def with_target(self, target) -> "ToyConfig":
        if target.kind != "scalar":
            raise ValueError(f"the toy family predicts scalars, not {target.kind}")
        return self


def forward(p, batch, config: ToyConfig, xp):
    """The math, once: ``p`` maps torch parameter names to arrays, ``xp`` is a ``zoo.backend`` ops module."""
    h = xp.take(p["embedding.weight"], batch["numbers"])  # (N, width)
    rbf = gaussian_expansion(batch["distances"], dmax=config.radius, step=1.0, xp=xp)  # (E, n_rbf)
    msg = xp.take(h, batch["senders"]) * xp.linear(rbf, p["radial.weight"], p["radial.bias"])
    h = h + xp.segment_mean(msg, batch["receivers"], h.shape[0])
    pooled = masked_segment_mean(xp.silu(h), batch["node_graph"], batch["n_nodes"].shape[0], batch.get("node_mask"), xp=xp)
    return xp.linear(pooled, p["out.weight"], p["out.bias"])[:, 0]


def n_rbf(config: ToyConfig) -> int:
    return int(gaussian_expansion(np.zeros(1), dmax=config.radius, step=1.0).shape[-1])


# --------------------------------------------------------------------- torch: parameter holders only
class TorchToy(torch.nn.Module):
    def __init__(self, config: ToyConfig):
        super().__init__()
        self.config = config
        self.embedding = torch.nn.Embedding(101, config.width)
        self.radial = torch.nn.Linear(n_rbf(config), config.width)
        self.out = torch.nn.Linear(config.width, 1)

    def forward(self, batch):
        batch = {**batch, "distances": batch["distances"].to(self.out.weight.dtype)}
        return forward(dict(self.named_parameters()), batch, self.config, xp_torch)


# ------------------------------------------------------------- flax: the same names and torch shapes
class Params(flax_nn.Module):
    """Parameters under torch's names and shapes (a Linear's weight is (out, in)): flax's path
    ("radial", "weight") is torch's "radial.weight", so zoo.backend.params converts by renaming."""

    shapes: tuple[tuple[str, tuple[int, ...]], ...]

    def setup(self):
        init = flax_nn.initializers.normal(0.1)
        self.arrays = {name: self.param(name, init, shape) for name, shape in self.shapes}


class JaxToy(flax_nn.Module):
    config: ToyConfig

    def setup(self):
        c = self.config
        self.embedding = Params((("weight", (101, c.width)),))
        self.radial = Params((("weight", (c.width, n_rbf(c))), ("bias", (c.width,))))
        self.out = Params((("weight", (1, c.width)), ("bias", (1,))))

    def __call__(self, batch, train: bool = False):
        p = {f"{m}.{k}": v for m in ("embedding", "radial", "out") for k, v in getattr(self, m).arrays.items()}
        return forward(p, batch, self.config, xp_jax)


@pytest.fixture
def toy_family():
    register_family("toy_api", backends={"torch": TorchToy, "jax": JaxToy}, outputs=("scalar",),
                    description="a family defined in a test, through the public API")(ToyConfig)
    yield
    FAMILIES.remove("toy_api")


def test_family_defined_outside_the_package_trains_in_both_backends(toy_family, tmp_path):
    from zoo.training import TrainConfig, load_trained, train

    assert "toy_api" in list_models() and get_family("toy_api").config is ToyConfig
    task = toy_task(n=24)
    preds = {}
    for backend in ("torch", "jax"):
        res = train(TrainConfig(model="toy_api", backend=backend, epochs=1, batch_size=8, out=str(tmp_path / backend),
                                progress=False, graph_cache=False, patience=0), task=task)
        assert res.summary["finished"] and np.isfinite(res.summary["val"]["mae"])
        assert (res.run_dir / "best.safetensors").exists()
        # the weights of either backend load in the other one and predict the same numbers
        graphs = None
        for other in ("torch", "jax"):
            model = load_trained(res.run_dir, backend=other, dtype="float64")
            if graphs is None:
                from zoo.graphs import build_graphs

                graphs, _ = build_graphs(list(task.df["structure"][:6]), model.graph_spec, cache=False, progress=False)
            preds[(backend, other)] = model.predict_graphs(graphs)
        np.testing.assert_allclose(preds[(backend, "torch")], preds[(backend, "jax")], rtol=1e-10, atol=1e-10)


def test_a_family_needs_a_config_with_graph_spec_and_with_target():
    @dataclass(frozen=True)
    class Incomplete:
        width: int = 1

    with pytest.raises(TypeError, match="graph_spec"):
        register_family("broken", backends={})(Incomplete)
    with pytest.raises(TypeError, match="dataclass"):
        register_family("broken", backends={})(object)
    assert "broken" not in list_models()
    assert dataclasses.is_dataclass(ToyConfig)
