"""Equivariance and backend-parity figures of a model, for the record (tests assert bounds; this measures them).

    zoo report equivariance [--model tfn] [--n-crystals 3] [--out results/tfn/equivariance.json]

(or ``python -m zoo.reports.equivariance ...``). For every target kind the model supports here (scalar;
dielectric ij=ji, piezoelectric ijk=ikj, elastic ijkl=jikl=klij for TFN), both backends and both
dtypes, with the default configuration and random (untrained) weights on random symmetric crystals
(``zoo.testing.random_crystals``):

- ``zoo.testing.equivariance_errors``: the largest relative error of the prediction under a random
  rotation, an improper rotation, a translation, a permutation of the atoms and a supercell, over two
  draws each (relative to the largest output component);
- ``zoo.testing.backend_parity_errors``: torch vs JAX on the same weights and batch, outputs and
  parameter gradients.

Writes the JSON atomically (with the machine record of ``zoo.core.provenance``) and prints a table.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from zoo.core import provenance
from zoo.core.io import write_json
from zoo.models import config_to_dict, get_family
from zoo.tasks.spec import TargetSpec
from zoo.testing import backend_parity_errors, equivariance_errors, predictor, random_crystals

from .common import RESULTS

TARGETS = {
    "scalar": dict(kind="scalar"),
    "dielectric": dict(kind="tensor", rank=2, formula="ij=ji"),
    "piezoelectric": dict(kind="tensor", rank=3, formula="ijk=ikj"),
    "elastic": dict(kind="tensor", rank=4, formula="ijkl=jikl=klij"),
}


def measure(model: str, n_crystals: int) -> list[dict]:
    """One row per (target kind the family supports, dtype): equivariance errors per backend and parity."""
    entry = get_family(model)
    structures = random_crystals(n_crystals, seed=0, max_atoms=8)
    rows = []
    for name, t in TARGETS.items():
        if t["kind"] not in entry.outputs:
            continue
        config = entry.config().with_target(TargetSpec(name, **t))
        for dtype in ("float64", "float32"):
            row = {"target": name, "dtype": dtype}
            for backend in ("torch", "jax"):
                predict = predictor(model, backend, config, dtype=dtype, seed=0)
                errs = equivariance_errors(predict, structures, rank=t.get("rank", 0))
                row[f"{backend}_equivariance_max"] = max(errs.values())
                row[f"{backend}_equivariance"] = errs
            row["parity"] = backend_parity_errors(model, config, structures, dtype=dtype, grads=True)
            rows.append(row)
            print(f"{name:<14}{dtype:<9} equivariance torch {row['torch_equivariance_max']:.1e} jax {row['jax_equivariance_max']:.1e}  "
                  f"parity output {row['parity']['output']:.1e} grad {row['parity'].get('grad', float('nan')):.1e}", flush=True)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="tfn")
    p.add_argument("--n-crystals", type=int, default=3)
    p.add_argument("--out", type=Path, default=RESULTS / "tfn" / "equivariance.json")
    args = p.parse_args(argv)

    rows = measure(args.model, args.n_crystals)
    write_json(args.out, {"model": args.model, "config": config_to_dict(get_family(args.model).config()),
                          "n_crystals": args.n_crystals, "rows": rows, "machine": provenance.environment(device="cpu")})
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
