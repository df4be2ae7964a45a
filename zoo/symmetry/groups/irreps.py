"""Real (physically irreducible) irreps of a point group from spgrep, with Mulliken labels.

spgrep returns, for each pair of complex-conjugate complex irreps (Frobenius-Schur indicator 0),
one real irrep of twice the dimension ("merged pair", e.g. the 2-d real E of C3 = ¹E ⊕ ²E), and for
each real-type irrep (indicator 1) a real form of it. Crystallographic point groups have no
quaternionic (indicator -1) ordinary irreps; that is checked.

Conventions (documented in docs/point_groups.md):

* Matrices act on column vectors and are exactly orthogonal (checked to 1e-13; if spgrep's ever are
  not, they are made orthogonal by the Weyl trick: H = (1/|G|) Σ Γ(g)ᵀ Γ(g) is a positive invariant
  form, and H^{1/2} Γ(g) H^{-1/2} is orthogonal).
* Labels are ASCII (A', A'' for A′, A″) and follow Mulliken (1955) as used in Cotton's and
  Altmann-Herzig's tables, derived here from the characters and the geometry of the operations
  (:func:`mulliken_labels`); a merged real pair gets the label of the pair without the left
  superscripts (E = ¹E ⊕ ²E, E1g = ¹E1g ⊕ ²E1g, ...).
* The order is: g (or ′) before u (or ″); then A < B < E < T; then subscript 1 < 2 < 3 (no
  subscript first).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .catalog import axis_angle, rotation_order

ORTHO_TOL = 1e-13
HOM_TOL = 1e-12


@dataclass(frozen=True)
class IrrepData:
    labels: tuple[str, ...]
    matrices: tuple[np.ndarray, ...]  # each (|G|, d, d) float64, read-only
    indicators: tuple[int, ...]  # Frobenius-Schur indicator of the complex constituent (1 or 0)
    characters: np.ndarray  # (n_irreps, |G|)


def orthogonalize_rep(G: np.ndarray) -> np.ndarray:
    """Weyl's unitary trick over the reals: conjugate a representation into an orthogonal one.

    H = (1/|G|) Σ_g Γ(g)ᵀ Γ(g) is symmetric positive definite and invariant (Γ(h)ᵀ H Γ(h) = H), so
    S = H^{1/2} gives S Γ(g) S⁻¹ orthogonal. The symmetric square root (eigh) keeps the result as
    close as possible to the input basis; a representation that is already orthogonal comes back
    unchanged up to rounding.
    """
    G = np.asarray(G, dtype=np.float64)
    H = np.einsum("gji,gjk->ik", G, G) / len(G)
    w, V = np.linalg.eigh((H + H.T) / 2)
    S = (V * np.sqrt(w)) @ V.T
    Sinv = (V / np.sqrt(w)) @ V.T
    return np.einsum("ij,gjk,kl->gil", S, G, Sinv)


def orthogonality_error(G: np.ndarray) -> float:
    d = G.shape[1]
    return float(np.abs(np.einsum("gji,gjk->gik", G, G) - np.eye(d)).max())


def homomorphism_error(G: np.ndarray, table: np.ndarray) -> float:
    """max |Γ(g)Γ(h) - Γ(gh)| over all pairs (table from catalog.multiplication_table)."""
    return float(np.abs(np.einsum("iab,jbc->ijac", G, G) - G[table]).max())


def spgrep_real_irreps(lattice_ops: np.ndarray) -> tuple[list[np.ndarray], list[int]]:
    """spgrep's physically irreducible representations, in spgrep's (non-Mulliken) order."""
    # spgrep's pointgroup module warns about a deprecated import path on first use; not ours to fix.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from spgrep.symmetry.enumerate import enumerate_unitary_irreps

        reps, indicators = enumerate_unitary_irreps(np.asarray(lattice_ops), real=True)
    return [np.asarray(np.real(r), dtype=np.float64) for r in reps], [int(i) for i in indicators]


# ----------------------------------------------------------------------------------------------
# Geometry of the operations, for labelling
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Op:
    det: int
    order: int  # order of the operation itself (e.g. 4 for -4, 6 for -3)
    proper_order: int  # order of its proper part det·R
    axis: np.ndarray  # axis of the proper part (unit; arbitrary for the identity)
    mirror: bool  # R is a reflection (det -1, proper part a 2-fold)


def _ops_geometry(ops: np.ndarray) -> list[_Op]:
    out = []
    for R in ops:
        det = int(round(np.linalg.det(R)))
        P = det * R
        n, _ = axis_angle(P)
        out.append(_Op(det, rotation_order(R), rotation_order(P), n, det == -1 and rotation_order(P) == 2))
    return out


def _parallel(a: np.ndarray, b: np.ndarray) -> bool:
    return abs(abs(float(a @ b)) - 1.0) < 1e-9


_X = np.array([1.0, 0.0, 0.0])
_Y = np.array([0.0, 1.0, 0.0])
_Z = np.array([0.0, 0.0, 1.0])


def _find(geo: list[_Op], pred) -> int | None:
    for k, o in enumerate(geo):
        if pred(o):
            return k
    return None


def mulliken_labels(ops: np.ndarray, chars: np.ndarray, dims: list[int],
                    subscript_ref: tuple | None = None) -> list[str]:
    """Mulliken labels of real irreps from their characters (n_irreps, |G|) and the geometry.

    Rules (Mulliken 1955, with the orientation of catalog.py):
      letter   d=1: A if χ(principal op) = +1 else B; d=2: E; d=3: T. The principal op is the
               highest-order operation along the principal axis, counting rotoinversions only
               when the group has neither inversion nor σh (so -4 decides A/B in S4 and D2d,
               the proper 3-fold in -3, -6, -6m2).
      g/u      groups with inversion: sign of χ(-1).
      '/''     groups with a mirror ⟂ principal axis (or the mirror of Cs) but no inversion.
      1/2/3    D2, D2h: B1, B2, B3 symmetric under the 2-fold along z, y, x.
               Cubic O, Oh (Td): A and T subscripts by the sign of χ(4z) (χ(-4z)): 1 if +.
               Other groups, A/B: 1 if symmetric under the group's reference element
               (``subscript_ref``: a 2-fold ⟂ the principal axis where there is one, else a
               mirror containing it; which one where the rules leave a choice is a per-group
               convention in catalog.py, e.g. σ(xz) in C2v as in Cotton, the 2-fold along y in
               D6 and D6h as in multipie/Bilbao).
               E in groups with a proper 6-fold: E1 if χ(6z) > 0 (χ = +1), E2 if < 0.
    """
    geo = _ops_geometry(ops)
    inv = _find(geo, lambda o: o.det == -1 and o.proper_order == 1)
    has_inv = inv is not None
    n_three = len({tuple(np.round(o.axis * np.sign(o.axis @ np.array([1.0, 2.0, 4.0])), 6))
                   for o in geo if o.proper_order == 3})
    cubic = n_three > 1
    proper_axes = [o for o in geo if o.det == 1 and o.order > 1]
    two_fold_axes = {tuple(np.round(np.abs(o.axis), 6)) for o in proper_axes if o.order == 2}
    max_order = max((o.order for o in proper_axes), default=1)
    # D2 and D2h have three equivalent 2-fold axes and no element of order > 2 (D2d has -4)
    d2_like = (not cubic) and max(o.order for o in geo) <= 2 and len(two_fold_axes) == 3
    labels = []
    # principal axis: the axis of the highest-order operation (rotoinversions count: -4 in S4 and
    # D2d, -6 in C3h), proper rotations preferred on ties (C2v: the 2-fold, not a mirror normal);
    # for Cs it is the mirror normal; Ci and C1 have none.
    principal = None
    if not cubic and not d2_like:
        axial = [o for o in geo if o.proper_order > 1]
        if axial:
            principal = max(axial, key=lambda o: (o.order, o.det)).axis
    sigma_h = None
    if principal is not None:
        sigma_h = _find(geo, lambda o: o.mirror and _parallel(o.axis, principal))
    use_primes = sigma_h is not None and not has_inv
    principal_op = None
    if principal is not None:
        allow_improper = not has_inv and sigma_h is None
        cands = [k for k, o in enumerate(geo) if o.order > 1 and _parallel(o.axis, principal)
                 and (o.det == 1 or allow_improper) and not o.mirror]
        if cands:
            principal_op = max(cands, key=lambda k: geo[k].order)
    # reference element for the 1/2 subscripts of A and B (per-group convention from the catalog)
    secondary = None
    if subscript_ref is not None:
        kind, ax = subscript_ref
        vec = {"x": _X, "y": _Y, "z": _Z}[ax]
        if kind == "2":
            secondary = _find(geo, lambda o: o.det == 1 and o.order == 2 and _parallel(o.axis, vec))
        else:
            secondary = _find(geo, lambda o: o.mirror and _parallel(o.axis, vec))
        if secondary is None:
            raise ValueError(f"subscript reference {subscript_ref} is not an operation of the group")
    six = None
    if principal is not None and max_order == 6:
        six = principal_op
    four = None
    if cubic:
        four = _find(geo, lambda o: o.order == 4 and _parallel(o.axis, _Z) and o.det == 1)
        if four is None:  # Td: -4 along z
            four = _find(geo, lambda o: o.order == 4 and _parallel(o.axis, _Z))
    d2_ops = {}
    if d2_like:
        for name, ax in (("1", _Z), ("2", _Y), ("3", _X)):
            d2_ops[name] = _find(geo, lambda o, ax=ax: o.det == 1 and o.order == 2 and _parallel(o.axis, ax))
    for chi, d in zip(chars, dims):
        sign = lambda k: 1 if chi[k] / d > 0 else -1  # noqa: E731
        if d == 1:
            letter = "A"
            if d2_like:
                letter = "A" if all(chi[k] > 0 for k in d2_ops.values()) else "B"
            elif principal_op is not None and not cubic:
                letter = "A" if chi[principal_op] > 0 else "B"
        elif d == 2:
            letter = "E"
        elif d == 3:
            letter = "T"
        else:
            raise ValueError(f"unexpected irrep dimension {d}")
        sub = ""
        if d == 1 and d2_like and letter == "B":
            sub = next(s for s, k in d2_ops.items() if chi[k] > 0)
        elif cubic and four is not None and letter in "AT":
            sub = "1" if sign(four) > 0 else "2"
        elif not cubic and d == 1 and secondary is not None:
            sub = "1" if sign(secondary) > 0 else "2"
        elif d == 2 and six is not None:
            sub = "1" if chi[six] > 0 else "2"
        suffix = ""
        if has_inv:
            suffix = "g" if sign(inv) > 0 else "u"
        elif use_primes:
            suffix = "'" if sign(sigma_h) > 0 else "''"
        labels.append(letter + sub + suffix)
    return labels


def label_sort_key(label: str) -> tuple:
    parity = 1 if label.endswith(("u", "''")) else 0
    letter = "ABET".index(label[0])
    digits = "".join(c for c in label[1:] if c.isdigit())
    return (parity, letter, int(digits) if digits else 0)


def canonical_label(label: str) -> str:
    """Labels are ASCII (A', A''); the typographic primes ′ ″ are accepted on input."""
    return label.strip().replace("″", "''").replace("′", "'")


def build_irreps(ops: np.ndarray, lattice_ops: np.ndarray, table: np.ndarray,
                 subscript_ref: tuple | None = None) -> IrrepData:
    """spgrep irreps -> exactly orthogonal real irreps, Mulliken labels, documented order."""
    reps, indicators = spgrep_real_irreps(lattice_ops)
    if any(i not in (0, 1) for i in indicators):
        raise RuntimeError(f"unexpected Frobenius-Schur indicators {indicators}")
    fixed = []
    for G in reps:
        if orthogonality_error(G) > ORTHO_TOL:
            G = orthogonalize_rep(G)
        if orthogonality_error(G) > ORTHO_TOL or homomorphism_error(G, table) > HOM_TOL:
            raise RuntimeError("spgrep irrep is not an orthogonal representation to 1e-12")
        fixed.append(G)
    dims = [G.shape[1] for G in fixed]
    chars = np.stack([np.trace(G, axis1=1, axis2=2) for G in fixed])
    # The realness type must agree with the character norm: <χ,χ> = 1 (real type), 2 (merged pair).
    norms = (chars * chars).sum(1) / len(ops)
    for ind, nrm in zip(indicators, norms):
        if abs(nrm - (1 if ind == 1 else 2)) > 1e-9:
            raise RuntimeError("spgrep indicator does not match the character norm")
    labels = mulliken_labels(ops, chars, dims, subscript_ref)
    if len(set(labels)) != len(labels):
        raise RuntimeError(f"Mulliken labels are not unique: {labels}")
    # spgrep's order is not Mulliken's: sort explicitly by the documented key.
    perm = sorted(range(len(labels)), key=lambda k: label_sort_key(labels[k]))
    mats = []
    for k in perm:
        G = np.ascontiguousarray(fixed[k])
        G.setflags(write=False)
        mats.append(G)
    chars = np.ascontiguousarray(chars[perm])
    chars.setflags(write=False)
    return IrrepData(tuple(labels[k] for k in perm), tuple(mats), tuple(indicators[k] for k in perm), chars)
