"""Symmetry figures of the point-group network: holohedry equivariance, the O(3) pipeline, Neumann, parity.

    zoo report pgnet_symmetry [--out results/pgnet/symmetry.json] [--n-crystals 12]

For the dielectric (ij=ji), piezoelectric (ijk=ikj) and elastic (ijkl=jikl=klij) heads, both backends
and both dtypes, with random (untrained) weights of a small configuration (the tests' widths; the
maths does not depend on them):

- ``holohedry``: the network itself, fed a triclinic crystal moved by every operation h of O_h (48) or
  D_6h (24) in the holohedry's frame (no standardisation): max_h |f(hS) - h·f(S)| / max |f(S)|;
- ``pipeline``: the whole model (standard frame, network, back to the crystal's frame) under random
  proper and improper rotations, translations, permutations and supercells of one crystal of each of
  the 7 crystal systems (``zoo.testing.equivariance_errors``);
- ``neumann``: over random symmetric crystals, max ||T - Sym_G T|| / max ||T|| with G each crystal's own
  point group (most are proper subgroups of the holohedry);
- ``parity``: torch vs JAX on the same weights, outputs and parameter gradients
  (``zoo.testing.backend_parity_errors``); in float32 also each backend's gradient error against the
  float64 gradient of the same weights, the rounding scale that the float32 parity is read against.

Writes the JSON atomically with the machine record and prints the table (and a markdown one).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from zoo.core import provenance
from zoo.core.io import write_json, write_text
from zoo.graphs import GraphSpec, build_graph, collate
from zoo.models import build, config_to_dict
from zoo.models.pgnet import PGNetConfig
from zoo.models.pgnet.config import HOLOHEDRIES
from zoo.symmetry import cartesian_point_group, point_group, rotate_tensor, symmetry_violation
from zoo.tasks.embedded.generator import generate_crystals
from zoo.tasks.spec import TargetSpec
from zoo.testing import backend_parity_errors, equivariance_errors, predictor, random_crystals, transform_structure

from .common import RESULTS

TARGETS = {
    "dielectric": TargetSpec("eps", kind="tensor", rank=2, formula="ij=ji"),
    "piezoelectric": TargetSpec("e", kind="tensor", rank=3, formula="ijk=ikj"),
    "elastic": TargetSpec("C", kind="tensor", rank=4, formula="ijkl=jikl=klij"),
}
SMALL = dict(
    hidden_oh="8xA1g + 2xA2g + 2xEg + 2xT1g + 2xT2g + 2xA1u + 2xA2u + 2xEu + 2xT1u + 2xT2u",
    hidden_d6h="8xA1g + 2xA2g + 2xB1g + 2xB2g + 2xE1g + 2xE2g + 2xA1u + 2xA2u + 2xB1u + 2xB2u + 2xE1u + 2xE2u",
    embed_dim=8, radial_hidden=16, n_layers=2, avg_num_neighbors=12.0,
)
SYSTEMS = ("triclinic", "monoclinic", "orthorhombic", "tetragonal", "trigonal", "hexagonal", "cubic")


def one_per_system(spec: GraphSpec, seed: int = 7) -> dict[str, object]:
    out = {}
    for c in generate_crystals(200, seed=seed, max_atoms=8, progress=False):
        if c.crystal_system not in out:
            try:
                build_graph(c.structure, spec)
            except ValueError:
                continue
            out[c.crystal_system] = c.structure
    return out


def holohedry_error(config: PGNetConfig, crystal, group: str, backend: str, dtype: str) -> float:
    """max_h |f(hS) - h·f(S)| / max|f(S)| over every operation h of ``group``, the network in its frame."""
    G = point_group(group)
    spec = GraphSpec(rule="radius", radius=config.radius)
    batch = dict(collate([build_graph(transform_structure(crystal, R=h), spec) for h in G.operations]))
    batch["frame_rotation"] = np.broadcast_to(np.eye(3), (G.order, 3, 3)).copy()
    batch["frame_holohedry"] = np.full(G.order, HOLOHEDRIES.index(group), dtype=np.int64)
    out = _run(config, batch, backend, dtype)
    base = out[0]  # the identity is the first operation
    return max(float(np.abs(out[k] - rotate_tensor(base, h)).max()) for k, h in enumerate(G.operations)) / float(np.abs(base).max())


def _run(config: PGNetConfig, batch: dict, backend: str, dtype: str) -> np.ndarray:
    """The network on a prepared (unpadded) batch, the same seeded weights in both backends."""
    import torch

    from zoo.backend.torch import to_torch

    torch.manual_seed(0)
    model = build("pgnet", "torch", config).to(getattr(torch, dtype))
    if backend == "torch":
        with torch.no_grad():
            return model(to_torch(batch, dtype=getattr(torch, dtype))).numpy().astype(np.float64)
    import jax

    from zoo.backend.jax import to_jax
    from zoo.backend.params import flax_from_torch

    module = build("pgnet", "jax", config)
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    with jax.enable_x64(dtype == "float64"):
        jb = to_jax(batch, dtype=getattr(jax.numpy, dtype))
        shapes = jax.eval_shape(lambda k, b: module.init(k, b), jax.random.PRNGKey(0), jb)
        like = jax.tree_util.tree_map(lambda s: np.zeros(s.shape, dtype), shapes)
        variables = flax_from_torch(state, like=like)
        return np.asarray(jax.jit(module.apply)(variables, jb), dtype=np.float64)


def neumann_error(config: PGNetConfig, structures, backend: str, dtype: str) -> tuple[float, int]:
    out = predictor("pgnet", backend, config, dtype=dtype)(structures)
    scale = max(float(np.linalg.norm(T)) for T in out)
    worst, orders = 0.0, set()
    for s, T in zip(structures, out):
        ops = cartesian_point_group(s)
        orders.add(len(ops))
        worst = max(worst, symmetry_violation(T, ops) * float(np.linalg.norm(T)) / scale)
    return worst, len(orders)


def measure(n_crystals: int) -> list[dict]:
    rows = []
    for name, target in TARGETS.items():
        config = PGNetConfig(**SMALL).with_target(target)
        systems = one_per_system(config.graph_spec())
        structures = [systems[k] for k in SYSTEMS if k in systems]
        many = random_crystals(n_crystals, seed=21, max_atoms=8, graph_specs=(config.graph_spec(),))
        for dtype in ("float64", "float32"):
            parity = backend_parity_errors("pgnet", config, structures, dtype, grads=True, rounding=True)
            for backend in ("torch", "jax"):
                pipeline = equivariance_errors(predictor("pgnet", backend, config, dtype=dtype), structures, target.rank)
                neumann, n_groups = neumann_error(config, many, backend, dtype)
                row = {
                    "target": name, "backend": backend, "dtype": dtype,
                    "holohedry_Oh": holohedry_error(config, systems["triclinic"], "m-3m", backend, dtype),
                    "holohedry_D6h": holohedry_error(config, systems["triclinic"], "6/mmm", backend, dtype),
                    "pipeline": max(pipeline.values()), "pipeline_by_check": pipeline,
                    "neumann": neumann, "neumann_point_groups": n_groups, "n_crystals": len(many),
                    "parity_output": parity["output"], "parity_grad": parity["grad"], "systems": list(systems),
                    "grad_rounding": parity.get(f"grad_rounding_{backend}"),
                }
                rows.append(row)
                print(f"{name:14s} {backend:5s} {dtype}  Oh {row['holohedry_Oh']:.1e}  D6h {row['holohedry_D6h']:.1e}  "
                      f"pipeline {row['pipeline']:.1e}  Neumann {neumann:.1e}  parity {parity['output']:.1e} / {parity['grad']:.1e}",
                      flush=True)
    return rows


def markdown(rows: list[dict]) -> str:
    lines = ["| target | backend | dtype | every O_h op | every D_6h op | O(3) pipeline, 7 systems | Neumann | parity out / grad "
             "| this backend's float32 grad vs float64 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['target']} | {r['backend']} | {r['dtype']} | {r['holohedry_Oh']:.1e} | {r['holohedry_D6h']:.1e} | "
                     f"{r['pipeline']:.1e} | {r['neumann']:.1e} ({r['neumann_point_groups']} point groups) | "
                     f"{r['parity_output']:.1e} / {r['parity_grad']:.1e} | "
                     + (f"{r['grad_rounding']:.1e} |" if r.get("grad_rounding") is not None else "– |"))
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="zoo report pgnet_symmetry", description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(RESULTS / "pgnet" / "symmetry.json"))
    ap.add_argument("--n-crystals", type=int, default=12, help="random crystals of the Neumann check")
    args = ap.parse_args(argv)
    rows = measure(args.n_crystals)
    out = Path(args.out)
    write_json(out, {"config": config_to_dict(PGNetConfig(**SMALL)), "rows": rows, "machine": provenance.environment()})
    write_text(out.with_suffix(".md"), markdown(rows))
    print(markdown(rows))
    print(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
