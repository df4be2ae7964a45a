"""The embedded (offline, generated) data set: crystals from ``generator.generate_crystals`` labelled
with the model dielectric tensor (``dielectric.dielectric_tensor``) and
the Born elastic tensor (``elastic.born_elastic_tensor``, GPa).

``build_embedded_dataset(n, seed)`` returns a DataFrame indexed by id with columns

- ``structure``: pymatgen Structure
- ``dielectric``: (3, 3) relative permittivity tensor (dimensionless), full Cartesian, structure frame
- ``eps_iso``: trace/3 of ``dielectric`` (isotropic relative permittivity)
- ``elastic``: (3, 3, 3, 3) elastic stiffness in GPa (NaN-filled for a crystal whose elastic tensor
  could not be computed, so the elastic task drops it with a warning)
- ``spacegroup`` (int), ``point_group`` (Hermann-Mauguin str), ``crystal_system`` (str)

``n`` is the number of GENERATED candidates: a candidate whose dielectric model hits the polarization
catastrophe (``PolarizationCatastrophe``: the Clausius-Mossotti denominator vanishes, eps would be
infinite or negative) is rejected, so the frame has ``n - n_rejected`` rows. ``df.attrs`` records
``n_candidates``, ``n_rejected``, ``rejected_share`` and ``rejected`` ({id: reason}).

Deterministic: the same (n, seed) gives the same rows, in the generator's order, whether generated and
labelled in one process or several. Cached as gzip JSON (no pickle) in ``$ZOO_CACHE/tasks`` (default
``~/.cache/crystal-zoo/tasks``), keyed by (n, seed, DATASET_VERSION and the VERSION of the physics
modules: ``VERSION`` where a module defines one, "0" otherwise). Bump ``DATASET_VERSION`` when a change
here can change a label.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from zoo.core.io import atomic_path
from zoo.core.paths import cache_root

from ..base import ArrayTask
from . import dielectric, elastic, generator

logger = logging.getLogger(__name__)

DATASET_VERSION = "1"
CACHE_FORMAT = 2  # 2: the elastic column is always present
COLUMNS = ("structure", "dielectric", "eps_iso", "elastic", "spacegroup", "point_group", "crystal_system")
# Parallel generation and labelling pay off only past a few dozen crystals (a spawned worker imports
# numpy, pymatgen and the physics modules first, about a second).
PARALLEL_MIN = 64
# Failures of the elastic model that mark one crystal's elastic tensor as missing (NaN) instead of
# aborting the build; anything else is a bug and propagates.
ELASTIC_ERRORS = (ValueError, ArithmeticError, np.linalg.LinAlgError)


def cache_dir() -> Path:
    """``$ZOO_CACHE/tasks`` (default ``~/.cache/crystal-zoo/tasks``)."""
    return cache_root() / "tasks"


def _module_version(module) -> str:
    return str(getattr(module, "VERSION", "0"))


def _physics() -> dict[str, Any]:
    """The generator and the labelling physics (a function, so that a test can put fakes in their place)."""
    return {
        "generate_crystals": generator.generate_crystals,
        "dielectric_tensor": dielectric.dielectric_tensor,
        "PolarizationCatastrophe": dielectric.PolarizationCatastrophe,
        "born_elastic_tensor": elastic.born_elastic_tensor,
    }


def dataset_key(n: int, seed: int) -> dict[str, Any]:
    """Everything the labels depend on; its hash names the cache file."""
    return {
        "n": int(n),
        "seed": int(seed),
        "dataset_version": DATASET_VERSION,
        "generator_version": _module_version(generator),
        "dielectric_version": _module_version(dielectric),
        "elastic_version": _module_version(elastic),
    }


def cache_path(n: int, seed: int, directory: str | os.PathLike | None = None) -> Path:
    key = dataset_key(n, seed)
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    return Path(directory or cache_dir()) / f"embedded_n{n}_seed{seed}_v{DATASET_VERSION}_{digest}.json.gz"


# --------------------------------------------------------------------------------------------- labelling
def _label(payload: tuple[str, dict]) -> dict[str, Any]:
    """Label one crystal (runs in a worker process too: takes and returns plain data only)."""
    from pymatgen.core import Structure

    cid, sdict = payload
    phys = _physics()
    structure = Structure.from_dict(sdict)
    try:
        eps = np.asarray(phys["dielectric_tensor"](structure, name=cid), dtype=np.float64)
    except phys["PolarizationCatastrophe"] as exc:
        return {"id": cid, "rejected": f"PolarizationCatastrophe: {exc}"}
    out: dict[str, Any] = {"id": cid, "dielectric": eps.tolist()}
    try:
        out["elastic"] = np.asarray(phys["born_elastic_tensor"](structure), dtype=np.float64).tolist()
    except ELASTIC_ERRORS as exc:
        out["elastic"] = None
        out["elastic_error"] = f"{type(exc).__name__}: {exc}"
    return out


def _label_all(payloads: list[tuple[str, dict]], progress: bool) -> list[dict[str, Any]]:
    from tqdm.auto import tqdm

    return [_label(p) for p in tqdm(payloads, total=len(payloads), desc="labelling embedded crystals", disable=not progress,
                                    unit="crystal")]


def _generate_and_label(chunk: tuple[int, int, int]) -> list[tuple[Any, dict[str, Any]]]:
    """Crystals ``start .. start+n-1`` of ``seed`` and their labels, for a worker process: generation is
    per crystal (crystal k's random stream depends on (seed, k) only), so a chunk gives the same crystals
    as the whole list, and the labels are ``_label``'s on the same structure dicts."""
    n, seed, start = chunk
    crystals = _physics()["generate_crystals"](n, seed, progress=False, start=start)
    return [(c, _label((str(c.id), c.structure.as_dict()))) for c in crystals]


def _generate_and_label_all(n: int, seed: int, workers: int, progress: bool) -> tuple[list, list[dict[str, Any]]]:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from tqdm.auto import tqdm

    # Generation (~13 ms CPU per crystal) runs in the workers next to the labelling (~45 ms), not before
    # it in this process: the whole build then uses every worker. Chunks of ~1/16 of a worker's share
    # balance the load (crystals differ in size) at little pickling cost.
    size = max(1, n // (workers * 16))
    chunks = [(min(size, n - start), seed, start) for start in range(0, n, size)]
    crystals, labels = [], []
    # spawn, not fork: the parent may hold torch / jax thread pools, which fork can deadlock.
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as ex, \
            tqdm(total=n, desc="generating and labelling embedded crystals", disable=not progress, unit="crystal") as bar:
        # map keeps the input order, so the result does not depend on which worker made what.
        for done in ex.map(_generate_and_label, chunks):
            crystals += [c for c, _ in done]
            labels += [lab for _, lab in done]
            bar.update(len(done))
    return crystals, labels


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))


# --------------------------------------------------------------------------------------------- cache io
def _to_json(df: pd.DataFrame, key: dict[str, Any]) -> dict[str, Any]:
    rows = []
    for cid, r in df.iterrows():
        el = r.get("elastic")
        rows.append({
            "id": cid,
            "structure": r["structure"].as_dict(),
            "dielectric": np.asarray(r["dielectric"]).tolist(),
            "elastic": None if el is None else np.asarray(el).tolist(),
            "spacegroup": int(r["spacegroup"]),
            "point_group": str(r["point_group"]),
            "crystal_system": str(r["crystal_system"]),
        })
    attrs = {k: v for k, v in df.attrs.items()}
    return {"format": CACHE_FORMAT, "key": key, "attrs": attrs, "rows": rows}


def _from_json(d: dict[str, Any]) -> pd.DataFrame:
    from zoo.graphs.structures import structure_from_dict  # an allow-list: the cache names no other class

    records = []
    for r in d["rows"]:
        rec = {
            "id": r["id"],
            "structure": structure_from_dict(r["structure"], source=f"embedded data cache row {r['id']}"),
            "dielectric": np.asarray(r["dielectric"], dtype=np.float64),
            "spacegroup": int(r["spacegroup"]),
            "point_group": r["point_group"],
            "crystal_system": r["crystal_system"],
        }
        rec["elastic"] = (np.full((3, 3, 3, 3), np.nan) if r["elastic"] is None
                          else np.asarray(r["elastic"], dtype=np.float64))
        records.append(rec)
    return _frame(records, d["attrs"])


def _frame(records: list[dict[str, Any]], attrs: dict[str, Any]) -> pd.DataFrame:
    cols = list(COLUMNS)
    if records:
        df = pd.DataFrame.from_records(records, index="id")
    else:
        df = pd.DataFrame(columns=[c for c in cols if c != "eps_iso"], index=pd.Index([], name="id"))
    # eps_iso = Tr(eps)/3 (isotropic average; equals the scalar eps of a cubic crystal)
    df["eps_iso"] = [float(np.trace(np.asarray(e))) / 3.0 for e in df["dielectric"]]
    df = df[cols]
    df.attrs.update(attrs)
    return df


def _write_cache(path: Path, df: pd.DataFrame, key: dict[str, Any]) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz:
        # Python's json writes floats with repr: they read back bit-identical.
        gz.write(json.dumps(_to_json(df, key)).encode("utf-8"))


def _read_cache(path: Path, key: dict[str, Any]) -> pd.DataFrame | None:
    try:
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            d = json.load(fh)
    except (OSError, EOFError, json.JSONDecodeError) as exc:
        logger.warning("embedded data cache %s is unreadable (%s); rebuilding it", path, exc)
        return None
    if d.get("format") != CACHE_FORMAT or d.get("key") != key:
        logger.warning("embedded data cache %s was built for %s, not %s; rebuilding it", path, d.get("key"), key)
        return None
    return _from_json(d)


# --------------------------------------------------------------------------------------------- build
def build_embedded_dataset(
    n: int = 2000,
    seed: int = 0,
    progress: bool = True,
    cache: bool = True,
    workers: int | None = None,
    cache_directory: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Generate ``n`` candidate crystals with ``seed`` and label them (see the module docstring).

    Args:
        n: number of generated candidates (rows = n minus the rejected ones).
        seed: generator seed.
        progress: show a tqdm bar while labelling.
        cache: read / write the gzip JSON cache (``cache_path(n, seed)``).
        workers: generating and labelling processes (default min(2, cpus); 1 = in this process).
        cache_directory: override ``$ZOO_CACHE/tasks``.
    """
    if n < 1:
        raise ValueError(f"n must be a positive number of crystals, got {n}")
    key = dataset_key(n, seed)
    path = cache_path(n, seed, cache_directory)
    if cache and path.exists():
        df = _read_cache(path, key)
        if df is not None:
            logger.info("embedded data set (n=%d, seed=%d): %d crystals from cache %s", n, seed, len(df), path)
            return df

    workers = workers if workers is not None else default_workers()
    if workers > 1 and n >= PARALLEL_MIN:
        crystals, labels = _generate_and_label_all(n, seed, workers, progress)
    else:
        crystals = list(_physics()["generate_crystals"](n, seed, progress=progress))
        labels = None
    if len(crystals) != n:
        raise RuntimeError(f"generate_crystals({n}, {seed}) returned {len(crystals)} crystals, expected {n}")
    ids = [str(c.id) for c in crystals]
    if len(set(ids)) != len(ids):
        raise RuntimeError(f"generate_crystals({n}, {seed}) returned duplicated ids")
    if labels is None:
        labels = _label_all([(cid, c.structure.as_dict()) for cid, c in zip(ids, crystals)], progress)

    records, rejected, elastic_failed = [], {}, {}
    for c, lab in zip(crystals, labels):
        cid = str(c.id)
        assert lab["id"] == cid, "labels came back out of order"
        if "rejected" in lab:
            rejected[cid] = lab["rejected"]
            continue
        rec = {
            "id": cid,
            "structure": c.structure,
            "dielectric": np.asarray(lab["dielectric"], dtype=np.float64),
            "spacegroup": int(c.spacegroup),
            "point_group": str(c.point_group),
            "crystal_system": str(c.crystal_system),
        }
        if lab.get("elastic") is None:
            elastic_failed[cid] = lab.get("elastic_error", "")
            rec["elastic"] = np.full((3, 3, 3, 3), np.nan)
        else:
            rec["elastic"] = np.asarray(lab["elastic"], dtype=np.float64)
        records.append(rec)

    attrs = {
        "n_candidates": n,
        "seed": seed,
        "dataset_version": DATASET_VERSION,
        "n_rejected": len(rejected),
        "rejected_share": len(rejected) / n,
        "rejected": rejected,
        "elastic_failed": elastic_failed,
    }
    if rejected:
        logger.info("embedded data set (n=%d, seed=%d): %d of %d candidates rejected (%.1f %%) by the "
                    "polarization catastrophe", n, seed, len(rejected), n, 100.0 * len(rejected) / n)
    if elastic_failed:
        logger.warning("embedded data set: no elastic tensor for %d crystals: %s", len(elastic_failed),
                       dict(list(elastic_failed.items())[:5]))
    df = _frame(records, attrs)
    if cache:
        _write_cache(path, df, key)
        logger.info("embedded data set (n=%d, seed=%d): %d crystals cached in %s", n, seed, len(df), path)
    return df


def split_path(n: int, seed: int, task: str, split_seed: int,
               cache_directory: str | os.PathLike | None = None) -> Path:
    """Where the folds of ``task`` on the (n, seed) data set are written (JSON, next to the data)."""
    data = cache_path(n, seed, cache_directory)
    return data.with_name(data.name[: -len(".json.gz")] + f".{task}.split{split_seed}.json")


def build_task(spec, n: int, seed: int, progress: bool, cache: bool, workers: int | None,
               cache_directory: str | os.PathLike | None, split_seed: int | None = None,
               config: dict[str, Any] | None = None):
    """An ArrayTask of ``spec`` over the (n, seed) data set, built on first use. Its seed-derived split
    (split seed = data seed unless given) is written as JSON next to the cached data and reused."""
    s = seed if split_seed is None else split_seed
    split_file = split_path(n, seed, spec.name, s, cache_directory) if cache else None
    return ArrayTask.from_builder(
        spec,
        lambda: build_embedded_dataset(n=n, seed=seed, progress=progress, cache=cache, workers=workers,
                                       cache_directory=cache_directory),
        seed=s, split_file=split_file, config=config, stale_split="remake")
