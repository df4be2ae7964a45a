"""The PointGroup object: operations, real irreps, characters, products, couplings, subduction."""
from __future__ import annotations

import functools

import numpy as np

from . import catalog
from .coupling import dirl_coupling, multiplicity, product_decomposition
from .irreps import build_irreps, canonical_label
from .subduction import check_parity, group_wigner, o3_characters, subduce, subduction_multiplicities, wigner_d


class PointGroup:
    """One of the 32 crystallographic point groups in its standard orientation (see catalog.py).

    Obtain it with :func:`point_group` (cached), not by calling the constructor.
    All returned arrays are float64 and read-only (they are shared by the cache).
    """

    def __init__(self, hm: str):
        entry = catalog.build(hm)
        self._spec = entry.spec
        self._ops = entry.operations
        self._lat = entry.lattice_ops
        self._table = catalog.multiplication_table(self._ops)
        self._table.setflags(write=False)
        data = build_irreps(self._ops, self._lat, self._table, self._spec.subscript_ref)
        self._labels = data.labels
        self._pos = {lab: k for k, lab in enumerate(data.labels)}
        self._mats = dict(zip(data.labels, data.matrices))
        self._ind = dict(zip(data.labels, data.indicators))
        self._chars = data.characters
        self._coupling: dict[tuple[str, str, str], np.ndarray] = {}
        self._subduction: dict[tuple[int, int], dict] = {}

    # ---------------------------------------------------------------- names and operations
    @property
    def name(self) -> str:
        """Hermann-Mauguin symbol (ITA standard setting), e.g. 'm-3m'."""
        return self._spec.hm

    hm = name

    @property
    def schoenflies(self) -> str:
        return self._spec.schoenflies

    @property
    def system(self) -> str:
        """Crystal system: triclinic, monoclinic, orthorhombic, tetragonal, trigonal, hexagonal, cubic."""
        return self._spec.system

    @property
    def frame(self) -> str:
        """Holohedry whose Cartesian frame the group lives in: 'm-3m' or '6/mmm'."""
        return self._spec.frame

    @property
    def setting(self) -> str:
        """One-line description of the orientation."""
        return self._spec.setting

    @property
    def order(self) -> int:
        return len(self._ops)

    def __len__(self) -> int:
        return len(self._ops)

    @property
    def operations(self) -> np.ndarray:
        """(|G|, 3, 3) Cartesian orthogonal matrices; identity first (documented order)."""
        return self._ops

    @property
    def lattice_operations(self) -> np.ndarray:
        """(|G|, 3, 3) integer matrices on fractional coordinates of the frame's lattice."""
        return self._lat

    @property
    def table(self) -> np.ndarray:
        """Multiplication table: operations[table[i, j]] = operations[i] @ operations[j]."""
        return self._table

    @functools.cached_property
    def inverse(self) -> np.ndarray:
        """inverse[i] = index of operations[i]⁻¹."""
        inv = np.argmax(self._table == 0, axis=1)
        inv.setflags(write=False)
        return inv

    @functools.cached_property
    def classes(self) -> tuple[tuple[int, ...], ...]:
        """Conjugacy classes (operation indices), in order of first appearance."""
        seen: set[int] = set()
        out = []
        for i in range(self.order):
            if i in seen:
                continue
            cls = sorted({int(self._table[self._table[h, i], self.inverse[h]]) for h in range(self.order)})
            seen.update(cls)
            out.append(tuple(cls))
        return tuple(out)

    def index(self, R, atol: float = 1e-6) -> int:
        """Index of the operation equal (to ``atol``) to the 3x3 matrix R; KeyError if none."""
        R = np.asarray(R, dtype=np.float64).reshape(3, 3)
        dist = np.abs(self._ops - R).max(axis=(1, 2))
        k = int(np.argmin(dist))
        if dist[k] > atol:
            raise KeyError(f"matrix is not an operation of {self.name} in its standard orientation")
        return k

    def indices(self, Rs, atol: float = 1e-6) -> np.ndarray:
        """Indices of a stack of operations (n, 3, 3)."""
        return np.array([self.index(R, atol) for R in np.asarray(Rs)], dtype=np.int64)

    def contains(self, R, atol: float = 1e-6) -> bool:
        try:
            self.index(R, atol)
        except KeyError:
            return False
        return True

    def embedding(self, other: "PointGroup | str | None" = None) -> np.ndarray:
        """Indices of this group's operations among ``other``'s (default: its frame holohedry).

        Every group is a subgroup of its frame holohedry m-3m or 6/mmm in the same Cartesian frame,
        so ``point_group(G.frame).operations[G.embedding()] == G.operations``.
        """
        from . import point_group

        H = point_group(self.frame if other is None else other)  # a PointGroup passes through
        return H.indices(self._ops)

    @functools.cached_property
    def _embedding(self) -> np.ndarray:
        return self.embedding()

    def is_subgroup_of(self, other: "PointGroup | str") -> bool:
        """True when every operation of this group is one of ``other``'s (same frame, no rotation)."""
        from . import point_group

        H = point_group(other)
        return all(H.contains(R) for R in self._ops)

    # ---------------------------------------------------------------- irreps
    @property
    def irreps(self) -> list[str]:
        """Mulliken labels in the documented order (g before u, ' before '', A<B<E<T, 1<2<3)."""
        return list(self._labels)

    def _label(self, label: str) -> str:
        lab = canonical_label(label)
        if lab not in self._pos:
            raise KeyError(f"{label!r} is not an irrep of {self.name}; irreps: {', '.join(self._labels)}")
        return lab

    @property
    def trivial(self) -> str:
        """Label of the identity irrep (A, Ag, A1, A1g, A', A1', ...)."""
        return self._labels[0]

    @property
    def dims(self) -> list[int]:
        """Dimensions in irrep order."""
        return [self._mats[lab].shape[1] for lab in self._labels]

    def dim(self, label: str) -> int:
        return self._mats[self._label(label)].shape[1]

    def indicator(self, label: str) -> int:
        """Frobenius-Schur indicator of the complex constituent: 1 (absolutely irreducible) or
        0 (a complex-conjugate pair merged into one real irrep; its commutant is 2-dimensional)."""
        return self._ind[self._label(label)]

    def is_merged_pair(self, label: str) -> bool:
        return self.indicator(label) == 0

    def matrices(self, label: str) -> np.ndarray:
        """(|G|, d, d) real orthogonal matrices of the irrep, in the order of ``operations``."""
        return self._mats[self._label(label)]

    @property
    def characters(self) -> np.ndarray:
        """(n_irreps, |G|) characters, rows in ``irreps`` order, columns in ``operations`` order."""
        return self._chars

    def character(self, label: str) -> np.ndarray:
        return self._chars[self._pos[self._label(label)]]

    def decompose(self, chars) -> dict[str, int]:
        """{label: multiplicity} of a representation given by its characters (|G|,)."""
        chars = np.asarray(chars, dtype=np.float64)
        out = {}
        for k, lab in enumerate(self._labels):
            m = multiplicity(chars, self._chars[k])
            if m:
                out[lab] = m
        return out

    # ---------------------------------------------------------------- products and couplings
    def product(self, a: str, b: str) -> dict[str, int]:
        """{label: multiplicity} of a ⊗ b, non-zero entries in irrep order (characters only)."""
        a, b = self._label(a), self._label(b)
        return product_decomposition(self._chars, self._labels, self._pos[a], self._pos[b])

    def coupling(self, a: str, b: str, c: str) -> np.ndarray:
        """(m, d_a, d_b, d_c) coupling coefficients of c in a ⊗ b by Dirl's formula (coupling.py).

        C[k, i, j, n]: copy k, components i of a, j of b, n of c; m = 0 gives an empty array.
        With U = C.reshape(m, d_a d_b, d_c) stacked as columns, Uᵀ(Γa ⊗ Γb)U = ⊕ Γc.
        """
        key = (self._label(a), self._label(b), self._label(c))
        out = self._coupling.get(key)
        if out is None:
            Ga, Gb, Gc = (self._mats[k] for k in key)
            m = multiplicity(self._chars[self._pos[key[0]]] * self._chars[self._pos[key[1]]],
                             self._chars[self._pos[key[2]]])
            out = dirl_coupling(Ga, Gb, Gc, m)
            out.setflags(write=False)
            self._coupling[key] = out
        return out

    # ---------------------------------------------------------------- O(3) subduction
    @staticmethod
    def _lp(l, parity):
        if isinstance(l, str):  # e3nn spelling "2e", "3o", "1y" is not allowed here
            s = l.strip()
            if len(s) < 2 or s[-1] not in "eo" or not s[:-1].isdigit():
                raise ValueError(f"cannot parse O(3) irrep {l!r} (expected e.g. '2e' or '3o')")
            if parity is not None:
                raise ValueError("give either '2e' or (2, +1), not both")
            return int(s[:-1]), (1 if s[-1] == "e" else -1)
        if parity is None:
            raise TypeError("parity is required (+1 or -1, e3nn's p)")
        l = int(l)
        if l < 0:
            raise ValueError("l must be >= 0")
        return l, check_parity(parity)

    def subduction_multiplicities(self, l, parity=None) -> dict[str, int]:
        """{label: m} of the O(3) irrep (l, parity) restricted to G, from characters (no e3nn)."""
        l, parity = self._lp(l, parity)
        return subduction_multiplicities(l, parity, self._ops, self._chars, self._labels)

    def o3_characters(self, l, parity=None) -> np.ndarray:
        """Characters of e3nn's Irrep(l, parity) on the operations, by the closed formula."""
        l, parity = self._lp(l, parity)
        return o3_characters(l, parity, self._ops)

    def wigner_d(self, l, parity=None, backend: str = "auto") -> np.ndarray:
        """(|G|, 2l+1, 2l+1) e3nn Wigner matrices of the operations, straight from e3nn (float64)."""
        l, parity = self._lp(l, parity)
        return wigner_d(l, parity, self._ops, backend)

    def subduction(self, l, parity=None) -> dict[str, tuple[int, np.ndarray]]:
        """{label: (m, B)} for the O(3) irrep (l, parity), e3nn's real basis and parity convention.

        Only irreps with m > 0 appear, in irrep order. B is (2l+1, m·d): m orthonormal column
        blocks B_k with D(g) B_k = B_k Γ(g) for every operation g. Also accepts ``subduction("2e")``.
        """
        l, parity = self._lp(l, parity)
        key = (l, parity)
        out = self._subduction.get(key)
        if out is None:
            mults = self.subduction_multiplicities(l, parity)
            D = group_wigner(l, parity, self._ops, self.frame, self._embedding)
            out = subduce(D, self._mats, mults)
            self._subduction[key] = out
        return dict(out)

    def subduction_matrix(self, l, parity=None) -> np.ndarray:
        """Square orthogonal (2l+1, 2l+1) matrix [B_γ1 | B_γ2 | ...] in irrep order."""
        sub = self.subduction(l, parity)
        return np.concatenate([B for _, B in sub.values()], axis=1)

    # ---------------------------------------------------------------- feature specs
    def irreps_spec(self, spec):
        """Parse a feature spec like '16xA1g + 8xEg' (see spec.py) for this group."""
        from .spec import GIrreps

        return GIrreps.parse(spec, self)

    # ---------------------------------------------------------------- bulk
    def build_tables(self, lmax: int = 6, subduction: bool = True) -> "PointGroup":
        """Compute (and cache) every coupling of every ordered triple and the subductions l <= lmax."""
        for a in self._labels:
            for b in self._labels:
                for c in self.product(a, b):
                    self.coupling(a, b, c)
        if subduction:
            for l in range(lmax + 1):
                for p in (1, -1):
                    self.subduction(l, p)
        return self

    def __repr__(self) -> str:
        return f"PointGroup({self.name!r}, {self.schoenflies}, order={self.order}, irreps={' '.join(self._labels)})"
