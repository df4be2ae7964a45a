"""Atom and edge features: CGCNN's 92-dim one-hot atom table and the Gaussian distance expansion.

``cgcnn_atom_features()`` rebuilds CGCNN's atom table (Xie & Grossman, PRL 120, 145301 (2018), SI
Table S2) from pymatgen's element data, block by block, so that the encoding is documented and
reproducible rather than an opaque json file. Every block is a one-hot vector; an element whose
property is missing in pymatgen gets an all-zero block (the original table does the same).
Continuous properties are cut into equal-width bins on ``[lo, hi]`` (after ``ln`` where the SI says
"log scale"): ``bin = floor((x - lo) / (hi - lo) * n)`` clipped into ``0..n-1``.

====================  ====  =======================================================  =============================
block                 size  pymatgen source                                          bins
====================  ====  =======================================================  =============================
group                 19    ``Element.group``; column 0 = f-block (no group)         0 (f-block), 1..18
period                7     ``Element.row`` (the true period; La..Yb are period 6)   1..7
electronegativity     10    ``Element.X`` (Pauling; NaN for He, Ne, Ar)              0.5..4.0, linear
covalent radius       10    ``CovalentRadius.radius`` (Cordero 2008), Å → pm         25..250 pm, linear
valence electrons     12    from ``Element.full_electronic_structure`` (see below)   1..12
first ionisation E    10    ``Element.ionization_energy`` (eV)                       ln(eV) in 1.3..3.3
electron affinity     10    ``Element.electron_affinity`` (eV)                       -3.0..3.7 eV, linear
block                 4     ``Element.block`` (He → s, see below)                    s, p, d, f
atomic volume         10    ``Element.molar_volume`` (cm³/mol)                       ln(cm³/mol) in 1.5..4.3
====================  ====  =======================================================  =============================

Valence electrons: with n the highest occupied principal quantum number, the ns electrons, plus
the np electrons for the p block, plus the (n-1)d electrons for the d block; f electrons are never
counted (so every lanthanide/actinide has 2). The rule is taken literally, so Pd ([Kr]4d¹⁰, no 5s)
gets 4s² + 3d¹⁰ = 12, which is also what the original table holds. He is put in the s block by its
1s² configuration (pymatgen files it under p because of its column; the original has s).

Agreement with the shipped table (share of Z = 1..100 whose block is identical; measured and
asserted in ``tests/test_graphs.py::test_derived_cgcnn_features_agree_with_original``, pymatgen
2026.10): group, period, valence electrons, first ionisation energy and block 1.00;
electronegativity 0.80; atomic volume 0.80; electron affinity 0.62; covalent radius 0.42; whole rows
0.20. The encodings (bins, log scales, category rules) are therefore right; the residual differences
come from the element data: CGCNN's 2018 source used other covalent radii (not Cordero 2008: Ti sits
in the 115-137.5 pm bin there, Cordero gives 160 pm), other Pauling values for a few heavy elements
(W, Pt, Pb, Bi), left the electron affinity empty for many elements pymatgen now has (He, Mg, Mn,
lanthanides, ...), and used other molar volumes for the gases. Because of this, CGCNN should use the
exact original table (``original_cgcnn_atom_features``) to reproduce the published setting; the
derived table documents the encoding and extends it to other data.
"""
from __future__ import annotations

import functools
import importlib.util
import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

N_ELEMENTS = 100  # feature tables cover Z = 1..100 (CGCNN's range); row 0 is padding (zeros)

# (name, size) in table order; sizes add up to 92.
CGCNN_BLOCKS: tuple[tuple[str, int], ...] = (
    ("group", 19),
    ("period", 7),
    ("electronegativity", 10),
    ("covalent_radius", 10),
    ("valence_electrons", 12),
    ("first_ionization_energy", 10),
    ("electron_affinity", 10),
    ("block", 4),
    ("atomic_volume", 10),
)
CGCNN_FEATURE_DIM = sum(n for _, n in CGCNN_BLOCKS)  # 92


def cgcnn_block_slices() -> dict[str, slice]:
    """Column slice of each block in the 92-dim vector."""
    out, start = {}, 0
    for name, n in CGCNN_BLOCKS:
        out[name] = slice(start, start + n)
        start += n
    return out


def _bin(x: float | None, lo: float, hi: float, n: int) -> int | None:
    """Equal-width bin of ``x`` on [lo, hi] (clipped), or None when the value is missing."""
    if x is None or not math.isfinite(x):
        return None
    return min(max(int(math.floor((x - lo) / (hi - lo) * n)), 0), n - 1)


def _log(x: float | None) -> float | None:
    return math.log(x) if x is not None and math.isfinite(x) and x > 0 else None


def _float(x: Any) -> float | None:
    if x is None:
        return None
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _valence_electrons(el) -> int:
    structure = el.full_electronic_structure  # [(n, "s"|"p"|"d"|"f", occupancy), ...]
    n_outer = max(n for n, _, _ in structure)
    count = {(n, l): occ for n, l, occ in structure}
    valence = count.get((n_outer, "s"), 0)
    block = _block(el)
    if block == "p":
        valence += count.get((n_outer, "p"), 0)
    elif block == "d":
        valence += count.get((n_outer - 1, "d"), 0)
    return int(valence)


def _block(el) -> str:
    return "s" if el.Z == 2 else el.block  # He: 1s², s block (pymatgen files it under p)


def _element_bins(Z: int) -> dict[str, int | None]:
    """Index inside each block for element ``Z`` (None = missing data, all-zero block)."""
    from pymatgen.analysis.molecule_structure_comparator import CovalentRadius
    from pymatgen.core import Element

    el = Element.from_Z(Z)
    block = _block(el)
    rcov = CovalentRadius.radius.get(el.symbol)
    return {
        "group": 0 if block == "f" else int(el.group),
        "period": int(el.row) - 1,
        "electronegativity": _bin(_float(el.X), 0.5, 4.0, 10),
        "covalent_radius": _bin(None if rcov is None else 100.0 * rcov, 25.0, 250.0, 10),  # pm
        "valence_electrons": _bin(_valence_electrons(el), 0.5, 12.5, 12),  # 1..12 -> 0..11
        "first_ionization_energy": _bin(_log(_float(el.ionization_energy)), 1.3, 3.3, 10),
        "electron_affinity": _bin(_float(el.electron_affinity), -3.0, 3.7, 10),
        "block": "spdf".index(block),
        "atomic_volume": _bin(_log(_float(el.molar_volume)), 1.5, 4.3, 10),
    }


@functools.lru_cache(maxsize=1)
def _derived_table() -> np.ndarray:
    slices = cgcnn_block_slices()
    table = np.zeros((N_ELEMENTS + 1, CGCNN_FEATURE_DIM), dtype=np.float64)
    with warnings.catch_warnings():  # pymatgen warns on every missing property
        warnings.simplefilter("ignore")
        for Z in range(1, N_ELEMENTS + 1):
            for name, idx in _element_bins(Z).items():
                if idx is not None:
                    table[Z, slices[name].start + idx] = 1.0
    table.setflags(write=False)
    return table


def cgcnn_atom_features() -> np.ndarray:
    """CGCNN's 92-dim one-hot atom features rebuilt from pymatgen, shape (101, 92); row Z, row 0 zeros."""
    return _derived_table().copy()


def original_cgcnn_table_path() -> Path:
    """matminer's copy of CGCNN's ``atom_init.json`` (installed with the matbench extra)."""
    # Located, not imported: the file is all we need, and importing matminer (its version lookup through
    # importlib.metadata) would put it on every CGCNN run's start-up path.
    spec = importlib.util.find_spec("matminer")
    if spec is None or not spec.submodule_search_locations:  # pragma: no cover - matminer is a declared extra
        raise ImportError(
            "original_cgcnn_atom_features() reads the table shipped in matminer; "
            "install it with `pip install crystal-zoo[matbench]` or use cgcnn_atom_features()"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "utils" / "data_files" / "cgcnn_atom_feature.json"


@functools.lru_cache(maxsize=1)
def _original_table() -> np.ndarray:
    path = original_cgcnn_table_path()
    with open(path) as fh:
        raw = json.load(fh)
    table = np.zeros((N_ELEMENTS + 1, CGCNN_FEATURE_DIM), dtype=np.float64)
    for key, row in raw.items():
        Z = int(key)
        if not 1 <= Z <= N_ELEMENTS or len(row) != CGCNN_FEATURE_DIM:
            raise ValueError(f"{path}: unexpected entry {key!r} (length {len(row)}); expected Z in 1..100 and 92 values")
        table[Z] = row
    table.setflags(write=False)
    return table


def original_cgcnn_atom_features() -> np.ndarray:
    """The exact table CGCNN shipped (matminer's ``cgcnn_atom_feature.json``), shape (101, 92)."""
    return _original_table().copy()
