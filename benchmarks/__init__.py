"""crystal-zoo benchmarks.

Two kinds live here:

- the asv suite (``asv_*.py``): model speed / compile time / memory / equivariance / backend parity for
  every registered model, and graph building; over the working tree with ``asv run --python=same``
  (``make bench``), over a commit range with ``asv run A..B`` (each commit built into asv's own
  virtualenv, ``asv.conf.json``);
- stand-alone scripts (``featurize_jdft2d.py``, ``cgcnn_throughput.py``, ``tfn_throughput.py``,
  ``tfn_accuracy.py``) that write JSON under ``results/benchmarks``, on the shared plumbing of
  ``common.py`` (data, epoch plan, ``zoo.graphs`` batching and padding, timing, worker processes, the
  machine record). ``benchmarks/run_all.py`` (``make bench``) runs the asv suite and the first three.

This module holds the fixed-seed synthetic data the asv suite shares: crystals from the embedded
generator (``zoo.testing.random_crystals``), cached on disk as JSON under
``$ZOO_CACHE/benchmarks`` because asv starts a fresh process for every parameter combination and
drawing 200 symmetric crystals costs tens of seconds.
"""
from __future__ import annotations

import hashlib
import json
import sys
from functools import lru_cache
from pathlib import Path

# asv imports this package from the repository; the code under test is the installed crystal-zoo
# (`make venv` installs the working tree in editable mode). Where it is not installed, fall back
# to the working tree next to this folder (appended: an installed copy keeps precedence).
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.append(_ROOT)

BENCH_SEED = 20240601  # the suite's crystals never change unless the generator's code does
BENCH_MAX_ATOMS = 24  # the generator's default cap on atoms per primitive cell


def _generator_fingerprint() -> str:
    """sha256 of the generator's source: a new generator invalidates the cached crystals."""
    import zoo.tasks.embedded.generator as gen

    return hashlib.sha256(Path(gen.__file__).read_bytes()).hexdigest()[:12]


@lru_cache(maxsize=8)
def _bench_crystals(n: int, spec_keys: tuple[str, ...]) -> tuple:
    from pymatgen.core import Structure

    from zoo.core.paths import cache_root
    from zoo.core.io import write_json
    from zoo.testing import random_crystals

    tag = hashlib.sha256("|".join(spec_keys).encode()).hexdigest()[:8]
    path = cache_root() / "benchmarks" / f"crystals_n{n}_s{BENCH_SEED}_a{BENCH_MAX_ATOMS}_{tag}_{_generator_fingerprint()}.json"
    if path.exists():
        with open(path, encoding="utf-8") as fh:
            return tuple(Structure.from_dict(d) for d in json.load(fh)["structures"])
    specs = [_spec_from_key(k) for k in spec_keys]
    structures = random_crystals(n, seed=BENCH_SEED, max_atoms=BENCH_MAX_ATOMS, graph_specs=specs)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, {"seed": BENCH_SEED, "max_atoms": BENCH_MAX_ATOMS, "graph_specs": list(spec_keys),
                      "structures": [s.as_dict() for s in structures]})
    return tuple(structures)


def _spec_from_key(key: str):
    from zoo.graphs import GraphSpec

    # "rule|radius|max_neighbors" (GraphSpec.key() is for files; this one round-trips)
    rule, radius, k = key.split("|")
    return GraphSpec(rule=rule, radius=float(radius), max_neighbors=None if k == "None" else int(k))


def bench_crystals(n: int, graph_specs=()) -> list:
    """The suite's first ``n`` usable crystals (pymatgen Structures): every graph spec given must build."""
    keys = tuple(sorted({f"{s.rule}|{s.radius!r}|{s.max_neighbors}" for s in graph_specs}))
    return list(_bench_crystals(int(n), keys))
