"""Motif (local-environment) hyperedges of one crystal: each atom's coordination shell and its shape.

A motif is a centre atom and its coordination shell, found by pymatgen's ``CrystalNN`` (Pan et al.,
Inorg. Chem. 60, 1590 (2021)); its features describe the shape of the shell:

- ``LocalStructOrderParams`` (Zimmermann & Jain, RSC Adv. 10, 6063 (2020)): the 33 order parameters of
  ``LSOP_TYPES`` (how tetrahedral, octahedral, ... the shell is, and Steinhardt's q2, q4, q6), computed
  from the shell's own sites *at their periodic images* (the published CHGCNN code passed neighbour
  indices, for which pymatgen takes the sites inside the cell: a shell that crosses the cell boundary
  got the wrong geometry, and its features changed with the choice of cell). "cn" is divided by 12 so
  that every column is O(1); an order parameter pymatgen cannot define (None, e.g. angles of a
  one-atom shell) is 0.
- ChemEnv continuous symmetry measures (Waroquiers et al., Acta Cryst. B 76, 683 (2020)): the shell
  against every ideal coordination polyhedron of the same coordination number that ChemEnv implements,
  as matminer's ``ChemEnvSiteFingerprint`` encodes them, ``1 - min(CSM, 8) / 8`` per geometry of
  ``CE_TYPES`` (1 = the ideal polyhedron, 0 = far from it or another coordination number). We measure
  the CrystalNN shell itself (``LocalGeometryFinder.setup_local_geometry``) rather than ChemEnv's own
  Voronoi neighbour search, which fails on most layered (jdft2d) structures ("infinite vertex in the
  Voronoi construction", 12 of 16 sampled structures) and would describe another shell than the motif's.

Fallbacks, never a crash (each recorded in the motif's ``status`` bits and logged by the caller):

- ``NN_FALLBACK`` (1): ``CrystalNN`` raised for the structure (or returned no neighbour for a site):
  that site's shell comes from ``MinimumDistanceNN`` (neighbours within 1.1x the shortest distance);
- ``EMPTY_SHELL`` (2): no method found a neighbour: the motif holds its centre only, features 0;
- ``LSOP_FAILED`` (4): the order parameters raised: zeros;
- ``CSM_UNAVAILABLE`` (8): the coordination number is above ``MAX_CSM_CN`` (ChemEnv's permutation search
  grows factorially; the listed geometries stop at 12) or ChemEnv raised: zeros.

Numpy and pymatgen only; everything here runs in worker processes (``zoo.graphs.hyper``).
"""
from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np

# Bits of a motif's status (see the module docstring).
NN_FALLBACK, EMPTY_SHELL, LSOP_FAILED, CSM_UNAVAILABLE = 1, 2, 4, 8
STATUS_NAMES = {NN_FALLBACK: "shell from MinimumDistanceNN", EMPTY_SHELL: "no neighbour (centre only)",
                LSOP_FAILED: "order parameters failed (zeros)", CSM_UNAVAILABLE: "no ChemEnv measure (zeros)"}

NN_METHODS = ("crystalnn", "mindist")
FEATURE_SETS = ("lsop+csm", "lsop", "csm")

# pymatgen's LocalStructOrderParams types as the published CHGCNN featuriser uses them, less two that are not
# O(3) invariants of the shell, measured on 20 random crystals (every other type moved by < 1e-10):
# "bcc" changed by up to 0.05 under rotations and permutations of the atoms (it depends on the order of the
# neighbours), "sq_face_cap_trig_pris" by up to 0.37 under improper rotations (mirror images). Either would
# make the model depend on the frame or the handedness of the description, not on the crystal.
LSOP_TYPES = (
    "cn", "sgl_bd", "bent", "tri_plan", "tri_plan_max", "reg_tri", "sq_plan", "sq_plan_max", "pent_plan",
    "pent_plan_max", "sq", "tet", "tet_max", "tri_pyr", "sq_pyr", "sq_pyr_legacy", "tri_bipyr", "sq_bipyr", "oct",
    "oct_legacy", "pent_pyr", "hex_pyr", "pent_bipyr", "hex_bipyr", "T", "cuboct", "cuboct_max", "see_saw_rect",
    "q2", "q4", "q6", "oct_max", "hex_plan_max",
)
CN_SCALE = 12.0  # "cn" / 12: a coordination number as an O(1) feature

# ChemEnv geometries (mp symbols) with coordination numbers 1..12: matminer's ChemEnvSiteFingerprint
# preset list up to CN 12, in its order.
CE_TYPES = (
    "S:1", "L:2", "A:2", "TL:3", "TY:3", "TS:3", "T:4", "S:4", "SY:4", "SS:4", "PP:5", "S:5", "T:5", "O:6", "T:6",
    "PP:6", "PB:7", "ST:7", "ET:7", "FO:7", "C:8", "SA:8", "SBT:8", "TBT:8", "DD:8", "DDPN:8", "HB:8", "BO_1:8",
    "BO_2:8", "BO_3:8", "TC:9", "TT_1:9", "TT_2:9", "TT_3:9", "HD:9", "TI:9", "SMA:9", "SS:9", "TO_1:9", "TO_2:9",
    "TO_3:9", "PP:10", "PA:10", "SBSA:10", "MI:10", "BS_1:10", "BS_2:10", "TBSA:10", "PCPA:11", "H:11", "DI:11",
    "I:12", "PBP:12", "TT:12", "C:12", "AC:12", "SC:12", "HP:12", "HA:12",
)
MAX_CSM = 8.0  # ChemEnv's (and matminer's) largest meaningful measure; larger ones count as 8
MAX_CSM_CN = 12


def feature_names(features: str = "lsop+csm") -> list[str]:
    """Column names of the motif features for a feature set (``FEATURE_SETS``)."""
    check_options("crystalnn", features)
    out: list[str] = []
    if "lsop" in features:
        out += [f"lsop:{t}" for t in LSOP_TYPES]
    if "csm" in features:
        out += [f"csm:{t}" for t in CE_TYPES]
    return out


def check_options(nn: str, features: str) -> None:
    if nn not in NN_METHODS:
        raise ValueError(f"motif neighbour method must be one of {NN_METHODS}, got {nn!r}")
    if features not in FEATURE_SETS:
        raise ValueError(f"motif features must be one of {FEATURE_SETS}, got {features!r}")


def _structure(lattice: np.ndarray, numbers: np.ndarray, positions: np.ndarray):
    from pymatgen.core import Lattice, Structure

    return Structure(Lattice(lattice), [int(z) for z in numbers], positions, coords_are_cartesian=True)


def _shells(structure, nn: str) -> tuple[list[list[Any]], np.ndarray, str]:
    """Per site, the shell's neighbour sites (pymatgen PeriodicSites at their images); per-site status;
    and the reason of a fallback ("" if none)."""
    from pymatgen.analysis.local_env import CrystalNN, MinimumDistanceNN

    n = len(structure)
    status = np.zeros(n, dtype=np.int64)
    reason = ""
    shells: list[list[Any] | None] = [None] * n
    if nn == "crystalnn":
        try:
            infos = CrystalNN().get_all_nn_info(structure)
            shells = [[x["site"] for x in info] for info in infos]
        except Exception as exc:  # CrystalNN's Voronoi step can fail on degenerate cells
            reason = f"CrystalNN: {type(exc).__name__}: {exc}"
    fallback = MinimumDistanceNN(tol=0.1, cutoff=10.0)  # neighbours within 1.1x the shortest distance, 10 Å at most
    for i in range(n):
        if shells[i]:
            continue
        if nn == "crystalnn":
            status[i] |= NN_FALLBACK
        try:
            shells[i] = [x["site"] for x in fallback.get_nn_info(structure, i)]
        except Exception as exc:
            reason = reason or f"MinimumDistanceNN: {type(exc).__name__}: {exc}"
            shells[i] = []
        if not shells[i]:
            status[i] |= EMPTY_SHELL
    return shells, status, reason  # type: ignore[return-value]


def _lsop(op, centre, shell: list) -> np.ndarray:
    sites = [centre] + list(shell)
    values = op.get_order_parameters(sites, 0, indices_neighs=list(range(1, len(sites))))
    out = np.array([0.0 if v is None else float(v) for v in values], dtype=np.float64)
    out[LSOP_TYPES.index("cn")] /= CN_SCALE
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


def _csm(finder, site_index: int, shell: list) -> np.ndarray:
    coords = np.array([s.coords for s in shell], dtype=np.float64)
    finder.setup_local_geometry(site_index, coords)
    measures = finder.get_coordination_symmetry_measures(only_minimum=True, all_csms=False)
    out = np.zeros(len(CE_TYPES), dtype=np.float64)
    for k, ce in enumerate(CE_TYPES):
        if ce in measures:
            out[k] = 1.0 - min(float(measures[ce]["csm"]), MAX_CSM) / MAX_CSM
    return out


def structure_motifs(lattice: np.ndarray, numbers: np.ndarray, positions: np.ndarray, nn: str = "crystalnn",
                     features: str = "lsop+csm") -> dict[str, Any]:
    """The motifs of one crystal (Cartesian Å, lattice rows = vectors), one per atom, centred on it.

    Returns numpy arrays, motif k centred on atom k: ``member_node`` / ``member_motif`` (P,) (the
    centre first, then its shell sites in CrystalNN's order; an atom seen through two images is a
    member twice), ``features`` (N, F) float64 (``feature_names(features)``), ``status`` (N,) bits;
    plus ``reason`` (why a fallback was taken, "" if none) and ``seconds`` {"nn", "lsop", "csm"}.
    """
    check_options(nn, features)
    lattice, positions = np.asarray(lattice, dtype=np.float64), np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    numbers = np.asarray(numbers, dtype=np.int64)
    seconds = {"nn": 0.0, "lsop": 0.0, "csm": 0.0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pymatgen warns per site about missing oxidation states etc.
        structure = _structure(lattice, numbers, positions)
        t0 = time.perf_counter()
        shells, status, reason = _shells(structure, nn)
        seconds["nn"] = time.perf_counter() - t0
        n = len(structure)
        blocks = []
        if "lsop" in features:
            from pymatgen.analysis.local_env import LocalStructOrderParams

            t0 = time.perf_counter()
            op = LocalStructOrderParams(list(LSOP_TYPES))
            lsop = np.zeros((n, len(LSOP_TYPES)))
            for i in range(n):
                if not shells[i]:
                    continue
                try:
                    lsop[i] = _lsop(op, structure[i], shells[i])
                except Exception as exc:
                    status[i] |= LSOP_FAILED
                    reason = reason or f"LocalStructOrderParams: {type(exc).__name__}: {exc}"
            blocks.append(lsop)
            seconds["lsop"] = time.perf_counter() - t0
        if "csm" in features:
            from pymatgen.analysis.chemenv.coordination_environments.coordination_geometry_finder import LocalGeometryFinder

            t0 = time.perf_counter()
            # matminer's ChemEnvSiteFingerprint settings: centroid centring including the central site, no refinement.
            finder = LocalGeometryFinder()
            finder.setup_parameters(centering_type="centroid", include_central_site_in_centroid=True,
                                    structure_refinement=finder.STRUCTURE_REFINEMENT_NONE)
            finder.setup_structure(structure)
            csm = np.zeros((n, len(CE_TYPES)))
            for i in range(n):
                if not shells[i]:
                    continue
                if len(shells[i]) > MAX_CSM_CN:
                    status[i] |= CSM_UNAVAILABLE
                    continue
                try:
                    csm[i] = _csm(finder, i, shells[i])
                except Exception as exc:
                    status[i] |= CSM_UNAVAILABLE
                    reason = reason or f"ChemEnv: {type(exc).__name__}: {exc}"
            blocks.append(csm)
            seconds["csm"] = time.perf_counter() - t0
    members = [np.concatenate([[i], [s.index for s in shells[i]]]).astype(np.int64) for i in range(n)]  # PeriodicNeighbor.index: the site in the cell
    return {
        "member_node": np.concatenate(members) if members else np.zeros(0, np.int64),
        "member_motif": np.repeat(np.arange(n), [len(m) for m in members]).astype(np.int64),
        "features": np.concatenate(blocks, axis=1) if blocks else np.zeros((n, 0)),
        "status": status,
        "reason": reason,
        "seconds": seconds,
    }
