"""The 32 crystallographic point groups: names, generators and Cartesian operations.

Orientation ("standard orientation"; see docs/point_groups.md for the full table)
--------------------------------------------------------------------------------
Every group is given by integer generators ``W`` acting on *fractional* coordinates of the lattice of
its holohedry (x' = W x, column vectors, as in ITA and spglib), and converted to Cartesian
matrices R = Lᵀ W L⁻ᵀ where the rows of ``L`` are the basis vectors:

* triclinic, monoclinic, orthorhombic, tetragonal, cubic: L = I, so a, b, c = x, y, z.
  Monoclinic groups use ITA's standard *unique axis b* (the 2-fold / mirror normal is y).
  mm2 has its 2-fold along z (mirrors normal to x and y); -42m has 2-folds along x, y and
  mirrors normal to [110], [1-10] (ITA's standard symbol, not -4m2).
* trigonal and hexagonal: hexagonal axes a = (1, 0, 0), b = (-1/2, √3/2, 0), c = z.
  The settings are ITA's standard ones for the point groups: 32 = 321 (2-folds along the
  secondary directions [100], [010], [-1-10]; x is a 2-fold axis), 3m = 3m1 (mirror normals along
  [100], [010], [-1-10]), -3m = -3m1, -6m2 (mirror normals along [100]…, 2-folds along the
  tertiary directions [1-10], [120], [-2-10]; y is a 2-fold axis). The alternative settings 312,
  31m, -31m, -62m are the same groups rotated by 30° (or 90°) about z and are not separate
  entries.

With these conventions every group is a subgroup of m-3m (triclinic ... cubic, "cubic frame") or of
6/mmm (trigonal and hexagonal, "hexagonal frame") in the *same* Cartesian frame, which is what lets
a network restrict features from a holohedry to a subgroup without any rotation.

Element order (fixed, documented, and tested): identity first; proper rotations before improper
ones, and for centrosymmetric groups ``operations[n//2 + k] == -operations[k]``; proper rotations
sorted by (rotation order, axis, angle) — see :func:`_sort_key`. Code should not rely on positions
beyond that: use ``PointGroup.index``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_SQ3 = math.sqrt(3.0)
HEX_LATTICE = np.array([[1.0, 0.0, 0.0], [-0.5, _SQ3 / 2, 0.0], [0.0, 0.0, 1.0]])
CUBIC_LATTICE = np.eye(3)

# Integer generators in the fractional basis of the holohedry's lattice.
_I = ((1, 0, 0), (0, 1, 0), (0, 0, 1))
_INV = ((-1, 0, 0), (0, -1, 0), (0, 0, -1))
_2Z = ((-1, 0, 0), (0, -1, 0), (0, 0, 1))
_2Y = ((-1, 0, 0), (0, 1, 0), (0, 0, -1))
_MX = ((-1, 0, 0), (0, 1, 0), (0, 0, 1))
_MY = ((1, 0, 0), (0, -1, 0), (0, 0, 1))
_2X = ((1, 0, 0), (0, -1, 0), (0, 0, -1))
_4Z = ((0, -1, 0), (1, 0, 0), (0, 0, 1))
_M4Z = ((0, 1, 0), (-1, 0, 0), (0, 0, -1))  # -4 along z (rotoinversion: -1 · 4z)
_3111 = ((0, 0, 1), (1, 0, 0), (0, 1, 0))  # 3 along [111]: x -> y -> z -> x
# Hexagonal lattice (a, b at 120°):
_3Z = ((0, -1, 0), (1, -1, 0), (0, 0, 1))
_6Z = ((1, -1, 0), (1, 0, 0), (0, 0, 1))
_M6Z = ((-1, 1, 0), (-1, 0, 0), (0, 0, -1))  # -6 along z (-1 · 6z)
_2H100 = ((1, -1, 0), (0, -1, 0), (0, 0, -1))  # 2 along [100] (= x)
_MH100 = ((-1, 1, 0), (0, 1, 0), (0, 0, 1))  # mirror normal to [100] (= -1 · 2[100])


@dataclass(frozen=True)
class GroupSpec:
    hm: str  # Hermann-Mauguin symbol (ITA standard point-group setting)
    schoenflies: str
    system: str  # crystal system
    frame: str  # "m-3m" or "6/mmm": the holohedry whose Cartesian frame the group lives in
    generators: tuple
    setting: str  # one-line description of the orientation (copied into the docs table)
    # Reference element for the Mulliken 1/2 subscripts of A and B: ("2", axis) a 2-fold or
    # ("m", normal) a mirror; 1 = symmetric under it. The rules leave a choice where there are two
    # classes (D4, C4v, D6, C6v, D4h, D6h) and in C2v; the choices agree with Cotton's tables for
    # C2v/D4/C4v and with multipie's (Bilbao-style) tables for all 32 groups (tested).
    subscript_ref: tuple | None = None


_SPECS = (
    GroupSpec("1", "C1", "triclinic", "m-3m", (_I,), "identity only"),
    GroupSpec("-1", "Ci", "triclinic", "m-3m", (_INV,), "inversion"),
    GroupSpec("2", "C2", "monoclinic", "m-3m", (_2Y,), "unique axis b: 2 ∥ y"),
    GroupSpec("m", "Cs", "monoclinic", "m-3m", (_MY,), "unique axis b: mirror ⟂ y"),
    GroupSpec("2/m", "C2h", "monoclinic", "m-3m", (_2Y, _INV), "unique axis b: 2 ∥ y, m ⟂ y"),
    GroupSpec("222", "D2", "orthorhombic", "m-3m", (_2Z, _2Y), "2 ∥ x, y, z"),
    GroupSpec("mm2", "C2v", "orthorhombic", "m-3m", (_2Z, _MX), "2 ∥ z; mirrors ⟂ x and ⟂ y", ("m", "y")),
    GroupSpec("mmm", "D2h", "orthorhombic", "m-3m", (_2Z, _2Y, _INV), "2 ∥ x, y, z; mirrors ⟂ x, y, z"),
    GroupSpec("4", "C4", "tetragonal", "m-3m", (_4Z,), "4 ∥ z"),
    GroupSpec("-4", "S4", "tetragonal", "m-3m", (_M4Z,), "-4 ∥ z"),
    GroupSpec("4/m", "C4h", "tetragonal", "m-3m", (_4Z, _INV), "4 ∥ z, m ⟂ z"),
    GroupSpec("422", "D4", "tetragonal", "m-3m", (_4Z, _2X), "4 ∥ z; 2 ∥ x, y, [110], [1-10]", ("2", "x")),
    GroupSpec("4mm", "C4v", "tetragonal", "m-3m", (_4Z, _MX),
              "4 ∥ z; mirrors ⟂ x, y, [110], [1-10]", ("m", "x")),
    GroupSpec("-42m", "D2d", "tetragonal", "m-3m", (_M4Z, _2X),
              "-4 ∥ z; 2 ∥ x, y; mirrors ⟂ [110], [1-10]", ("2", "x")),
    GroupSpec("4/mmm", "D4h", "tetragonal", "m-3m", (_4Z, _2X, _INV),
              "4 ∥ z; 2 ∥ x, y, [110], [1-10]; inversion", ("2", "x")),
    GroupSpec("3", "C3", "trigonal", "6/mmm", (_3Z,), "3 ∥ z"),
    GroupSpec("-3", "C3i", "trigonal", "6/mmm", (_3Z, _INV), "-3 ∥ z"),
    GroupSpec("32", "D3", "trigonal", "6/mmm", (_3Z, _2H100),
              "321 setting: 3 ∥ z; 2 ∥ [100], [010], [-1-10] (x is a 2-fold)", ("2", "x")),
    GroupSpec("3m", "C3v", "trigonal", "6/mmm", (_3Z, _MH100),
              "3m1 setting: 3 ∥ z; mirrors ⟂ [100], [010], [-1-10] (mirror ⟂ x)", ("m", "x")),
    GroupSpec("-3m", "D3d", "trigonal", "6/mmm", (_3Z, _2H100, _INV),
              "-3m1 setting: -3 ∥ z; 2 ∥ [100]…; mirrors ⟂ [100]…", ("2", "x")),
    GroupSpec("6", "C6", "hexagonal", "6/mmm", (_6Z,), "6 ∥ z"),
    GroupSpec("-6", "C3h", "hexagonal", "6/mmm", (_M6Z,), "-6 ∥ z (m ⟂ z)"),
    GroupSpec("6/m", "C6h", "hexagonal", "6/mmm", (_6Z, _INV), "6 ∥ z, m ⟂ z"),
    GroupSpec("622", "D6", "hexagonal", "6/mmm", (_6Z, _2H100),
              "6 ∥ z; 2 ∥ [100]… and [1-10]…", ("2", "y")),
    GroupSpec("6mm", "C6v", "hexagonal", "6/mmm", (_6Z, _MH100),
              "6 ∥ z; mirrors ⟂ [100]… and ⟂ [1-10]…", ("m", "x")),
    GroupSpec("-6m2", "D3h", "hexagonal", "6/mmm", (_M6Z, _MH100),
              "-6m2 setting: m ⟂ z; mirrors ⟂ [100]…; 2 ∥ [1-10]… (y is a 2-fold)", ("2", "y")),
    GroupSpec("6/mmm", "D6h", "hexagonal", "6/mmm", (_6Z, _2H100, _INV),
              "6 ∥ z; 2 ∥ [100]…, [1-10]…; inversion", ("2", "y")),
    GroupSpec("23", "T", "cubic", "m-3m", (_2Z, _2Y, _3111), "2 ∥ x, y, z; 3 ∥ <111>"),
    GroupSpec("m-3", "Th", "cubic", "m-3m", (_2Z, _2Y, _3111, _INV), "23 + inversion"),
    GroupSpec("432", "O", "cubic", "m-3m", (_4Z, _3111), "4 ∥ x, y, z; 3 ∥ <111>; 2 ∥ <110>"),
    GroupSpec("-43m", "Td", "cubic", "m-3m", (_M4Z, _3111), "-4 ∥ x, y, z; 3 ∥ <111>; mirrors ⟂ <110>"),
    GroupSpec("m-3m", "Oh", "cubic", "m-3m", (_4Z, _3111, _INV), "432 + inversion"),
)

#: The 32 Hermann-Mauguin symbols in ITA order (crystal system, then order within it).
POINT_GROUPS: tuple[str, ...] = tuple(s.hm for s in _SPECS)
SPECS: dict[str, GroupSpec] = {s.hm: s for s in _SPECS}

# Other spellings of the same group *in the same orientation* (a different setting such as 312 is
# a different orientation and is refused with a hint instead of being silently mapped).
_ALIASES = {"321": "32", "3m1": "3m", "-3m1": "-3m", "m3m": "m-3m", "m3": "m-3", "2/m2/m2/m": "mmm",
            "4/m2/m2/m": "4/mmm", "6/m2/m2/m": "6/mmm", "-32/m": "-3m", "-32/m1": "-3m",
            "4/m-32/m": "m-3m", "2/m-3": "m-3"}
_SCHOENFLIES_ALIASES = {"s2": "-1", "c1h": "m", "v": "222", "vh": "mmm", "vd": "-42m", "s6": "-3",
                        "c1": "1", "ci": "-1"}
_OTHER_SETTINGS = {"312": "32 (321 setting)", "31m": "3m (3m1 setting)", "-31m": "-3m (-3m1 setting)",
                   "-62m": "-6m2", "-4m2": "-42m", "2mm": "mm2", "m2m": "mm2"}


def resolve_name(name: str) -> str:
    """HM symbol (any of the 32, a few equivalent spellings) or Schoenflies name -> HM symbol."""
    if not isinstance(name, str):
        raise TypeError(f"point-group name must be a string, got {type(name).__name__}")
    key = name.strip().replace(" ", "").replace("_", "")
    if key in SPECS:
        return key
    if key in _ALIASES:
        return _ALIASES[key]
    low = key.lower()
    for spec in _SPECS:
        if spec.schoenflies.lower() == low:
            return spec.hm
    if low in _SCHOENFLIES_ALIASES:
        return _SCHOENFLIES_ALIASES[low]
    if key in _OTHER_SETTINGS:
        raise ValueError(
            f"{name!r} is a non-standard orientation; this catalogue has {_OTHER_SETTINGS[key]} only "
            "(rotate the crystal frame: 30° about z for 312, 31m, -31m, -62m; 45° for -4m2; "
            "permute the axes for 2mm, m2m)")
    raise ValueError(f"unknown point group {name!r}; known: {', '.join(POINT_GROUPS)} (or Schoenflies names)")


def _closure(gens: list[np.ndarray]) -> list[np.ndarray]:
    """All products of the integer generators (a finite matrix group), by breadth-first search."""
    elems = [np.eye(3, dtype=np.int64)]
    seen = {elems[0].tobytes()}
    frontier = list(elems)
    while frontier:
        new = []
        for a in frontier:
            for g in gens:
                p = g @ a
                key = p.tobytes()
                if key not in seen:
                    seen.add(key)
                    new.append(p)
        elems.extend(new)
        frontier = new
        if len(elems) > 48:
            raise RuntimeError("generators do not generate a crystallographic point group")
    return elems


def rotation_order(R: np.ndarray) -> int:
    """Smallest n >= 1 with R^n = I (R a crystallographic rotation; n in 1, 2, 3, 4, 6)."""
    P = np.eye(3)
    for n in range(1, 7):
        P = P @ R
        if np.allclose(P, np.eye(3), atol=1e-9):
            return n
    raise ValueError("not a crystallographic operation")


def axis_angle(R: np.ndarray) -> tuple[np.ndarray, float]:
    """Axis (unit, sign fixed so that the angle is in [0, π]) and angle of a proper rotation."""
    c = np.clip((np.trace(R) - 1.0) / 2.0, -1.0, 1.0)
    theta = float(np.arccos(c))
    if theta < 1e-9:
        return np.array([0.0, 0.0, 1.0]), 0.0
    if np.pi - theta < 1e-9:
        # R = 2nnᵀ - I: n from the largest column of R + I.
        M = R + np.eye(3)
        n = M[:, int(np.argmax(np.linalg.norm(M, axis=0)))]
        n = n / np.linalg.norm(n)
        # canonical sign: first non-zero component positive
        nz = n[np.abs(n) > 1e-9][0]
        return n * np.sign(nz), float(np.pi)
    n = np.array([R[2, 1] - R[1, 2], R[0, 2] - R[2, 0], R[1, 0] - R[0, 1]]) / (2 * np.sin(theta))
    return n / np.linalg.norm(n), theta


def _sort_key(R: np.ndarray) -> tuple:
    # Sort proper rotations by order, then axis (z first, rounded to kill -0.0), then angle sense.
    n, theta = axis_angle(R)
    order = rotation_order(R)
    ax = tuple(-round(float(v), 6) + 0.0 for v in n[::-1])
    return (order, ax, round(theta, 6))


@dataclass(frozen=True)
class CatalogEntry:
    spec: GroupSpec
    lattice_ops: np.ndarray  # (n, 3, 3) int64, fractional basis of the frame's lattice
    operations: np.ndarray  # (n, 3, 3) float64 Cartesian, exactly orthogonal to float rounding


def build(hm: str) -> CatalogEntry:
    """Close the generators, convert to Cartesian, and put the elements in the documented order."""
    spec = SPECS[hm]
    gens = [np.array(g, dtype=np.int64) for g in spec.generators]
    W = _closure(gens)
    L = HEX_LATTICE if spec.frame == "6/mmm" else CUBIC_LATTICE
    Linv_T = np.linalg.inv(L).T
    cart = [L.T @ w @ Linv_T for w in W]
    # Snap the Cartesian entries to the exact values they can take (0, ±1/2, ±√3/2, ±1) so that
    # products are exact to one rounding; the hexagonal conversion itself leaves ~1e-16 residues.
    exact = np.array([0.0, 0.5, _SQ3 / 2, 1.0])
    snapped = []
    for R in cart:
        a = np.abs(R)
        idx = np.argmin(np.abs(a[..., None] - exact), axis=-1)
        snapped.append(np.sign(R) * exact[idx])
    cart = snapped
    dets = [round(float(np.linalg.det(R))) for R in cart]
    proper = [(r, w) for r, w, d in zip(cart, W, dets) if d == 1]
    improper = [(r, w) for r, w, d in zip(cart, W, dets) if d == -1]
    proper.sort(key=lambda rw: _sort_key(rw[0]))
    has_inversion = any(np.array_equal(w, -np.eye(3, dtype=np.int64)) for w in W)
    if has_inversion:
        # centrosymmetric: improper part is -1 times the proper part, in the same order
        improper = [(-r, -w) for r, w in proper]
    else:
        improper.sort(key=lambda rw: _sort_key(-rw[0]))
    ordered = proper + improper
    ops = np.stack([r for r, _ in ordered]).astype(np.float64)
    lat = np.stack([w for _, w in ordered]).astype(np.int64)
    ops.setflags(write=False)
    lat.setflags(write=False)
    return CatalogEntry(spec, lat, ops)


def multiplication_table(ops: np.ndarray, atol: float = 1e-9) -> np.ndarray:
    """table[i, j] = k with ops[i] @ ops[j] == ops[k]; raises if the set is not closed."""
    n = len(ops)
    flat = ops.reshape(n, 9)
    prods = np.einsum("iab,jbc->ijac", ops, ops).reshape(n, n, 9)
    dist = np.abs(prods[:, :, None, :] - flat[None, None, :, :]).max(-1)
    k = dist.argmin(-1)
    if not np.all(dist.min(-1) < atol):
        raise ValueError("operations are not closed under multiplication")
    return k
