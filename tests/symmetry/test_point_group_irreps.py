"""Real irreps: orthogonality, characters, Mulliken labels against the standard tables."""
from __future__ import annotations

import numpy as np
import pytest

from zoo.symmetry import POINT_GROUPS, point_group
from zoo.symmetry.groups.irreps import (
    homomorphism_error,
    label_sort_key,
    orthogonality_error,
    orthogonalize_rep,
    spgrep_real_irreps,
)

# Standard label lists in the standard (Cotton-style) order.
STANDARD_LABELS = {
    "m-3m": "A1g A2g Eg T1g T2g A1u A2u Eu T1u T2u",
    "6/mmm": "A1g A2g B1g B2g E1g E2g A1u A2u B1u B2u E1u E2u",
    "mm2": "A1 A2 B1 B2",
    "mmm": "Ag B1g B2g B3g Au B1u B2u B3u",
    "222": "A B1 B2 B3",
    "-6m2": "A1' A2' E' A1'' A2'' E''",
    "-6": "A' E' A'' E''",
    "4/mmm": "A1g A2g B1g B2g Eg A1u A2u B1u B2u Eu",
    "-42m": "A1 A2 B1 B2 E",
    "-3m": "A1g A2g Eg A1u A2u Eu",
    "432": "A1 A2 E T1 T2",
    "-43m": "A1 A2 E T1 T2",
    "23": "A E T",
    "m-3": "Ag Eg Tg Au Eu Tu",
    "6/m": "Ag Bg E1g E2g Au Bu E1u E2u",
    "4/m": "Ag Bg Eg Au Bu Eu",
    "-4": "A B E",
    "2/m": "Ag Bg Au Bu",
    "m": "A' A''",
    "-1": "Ag Au",
    "1": "A",
}
# Real irreps that are a merged complex-conjugate pair (Frobenius-Schur indicator 0).
MERGED = {"4": {"E"}, "-4": {"E"}, "4/m": {"Eg", "Eu"}, "3": {"E"}, "-3": {"Eg", "Eu"},
          "6": {"E1", "E2"}, "-6": {"E'", "E''"}, "6/m": {"E1g", "E2g", "E1u", "E2u"},
          "23": {"E"}, "m-3": {"Eg", "Eu"}}


@pytest.mark.parametrize("hm", sorted(STANDARD_LABELS))
def test_labels_and_order_match_the_standard_tables(hm):
    assert point_group(hm).irreps == STANDARD_LABELS[hm].split()


@pytest.mark.parametrize("hm", POINT_GROUPS)
def test_irreps_are_real_orthogonal_representations_with_consistent_characters(hm):
    G = point_group(hm)
    labels = G.irreps
    assert len(set(labels)) == len(labels)
    assert labels == sorted(labels, key=label_sort_key)  # documented order
    assert G.trivial == labels[0] and np.all(G.character(G.trivial) == 1)
    chars = G.characters
    assert chars.shape == (len(labels), G.order)
    for k, lab in enumerate(labels):
        M = G.matrices(lab)
        assert M.dtype == np.float64 and M.shape == (G.order, G.dim(lab), G.dim(lab))
        assert orthogonality_error(M) < 1e-14
        assert homomorphism_error(M, G.table) < 1e-14
        np.testing.assert_allclose(np.trace(M, axis1=1, axis2=2), chars[k], atol=1e-14)
        assert not M.flags.writeable  # shared through the cache
        assert G.indicator(lab) == (0 if lab in MERGED.get(hm, set()) else 1)
    # row orthogonality: <χi, χj> = δij <χi, χi>, with <χ, χ> = 1 (real type) or 2 (merged pair)
    gram = chars @ chars.T / G.order
    np.testing.assert_allclose(gram, np.diag([1.0 + (G.indicator(l) == 0) for l in labels]), atol=1e-12)
    # Burnside over the complex irreps: each merged pair of dimension d is two irreps of dim d/2
    total = sum(d * d if G.indicator(l) else 2 * (d // 2) ** 2 for l, d in zip(labels, G.dims))
    assert total == G.order


def _fn_characters(G, f, rng=np.random.default_rng(0)):
    """Characters of a 1-d function f(r): (g·f)(r) = f(Rᵀ r) = χ(g) f(r)."""
    pts = rng.standard_normal((5, 3))
    base = np.array([f(p) for p in pts])
    out = []
    for R in G.operations:
        ratio = np.array([f(R.T @ p) for p in pts]) / base
        assert np.allclose(ratio, ratio[0])  # f spans a 1-d representation
        out.append(ratio[0])
    return np.array(out)


X, Y, Z = (lambda r: r[0]), (lambda r: r[1]), (lambda r: r[2])
# (group, function, label) from Cotton's tables (and, for the hexagonal B1/B2 convention, multipie's)
ONE_D = [
    ("mm2", Z, "A1"), ("mm2", X, "B1"), ("mm2", Y, "B2"), ("mm2", lambda r: r[0] * r[1], "A2"),
    ("222", Z, "B1"), ("222", Y, "B2"), ("222", X, "B3"),
    ("mmm", Z, "B1u"), ("mmm", Y, "B2u"), ("mmm", X, "B3u"), ("mmm", lambda r: r[0] * r[1], "B1g"),
    ("4mm", Z, "A1"), ("4mm", lambda r: r[0] ** 2 - r[1] ** 2, "B1"), ("4mm", lambda r: r[0] * r[1], "B2"),
    ("422", Z, "A2"), ("422", lambda r: r[0] ** 2 - r[1] ** 2, "B1"),
    ("-42m", Z, "B2"), ("-42m", lambda r: r[0] ** 2 - r[1] ** 2, "B1"), ("-42m", lambda r: r[0] * r[1], "B2"),
    ("4/mmm", Z, "A2u"), ("4/mmm", lambda r: r[0] ** 2 - r[1] ** 2, "B1g"), ("4/mmm", lambda r: r[0] * r[1], "B2g"),
    ("-4", Z, "B"), ("4/m", Z, "Au"), ("-3m", Z, "A2u"), ("3m", Z, "A1"), ("32", Z, "A2"),
    ("-6m2", Z, "A2''"), ("-6", Z, "A''"), ("6mm", Z, "A1"), ("622", Z, "A2"), ("6/mmm", Z, "A2u"),
    ("6", Z, "A"), ("-3", Z, "Au"), ("2/m", Y, "Au"), ("2/m", X, "Bu"), ("2", Y, "A"), ("2", Z, "B"),
    ("m", X, "A'"), ("m", Y, "A''"), ("-1", X, "Au"),
    # hexagonal B1/B2: B1 symmetric under the 2-fold along y (documented convention)
    ("6/mmm", lambda r: r[1] ** 3 - 3 * r[0] ** 2 * r[1], "B1u"),
    ("6/mmm", lambda r: r[0] ** 3 - 3 * r[0] * r[1] ** 2, "B2u"),
    ("622", lambda r: r[2] * (r[1] ** 3 - 3 * r[0] ** 2 * r[1]), "B2"),
    ("-6m2", lambda r: r[1] ** 3 - 3 * r[0] ** 2 * r[1], "A1'"),
    ("432", lambda r: r[0] * r[1] * r[2], "A2"), ("-43m", lambda r: r[0] * r[1] * r[2], "A1"),
    ("m-3m", lambda r: r[0] * r[1] * r[2], "A2u"),
]


@pytest.mark.parametrize("hm,f,label", ONE_D)
def test_one_dimensional_functions_transform_as_the_standard_tables_say(hm, f, label):
    G = point_group(hm)
    np.testing.assert_allclose(_fn_characters(G, f), G.character(label), atol=1e-12)


def _vector(G):
    return np.trace(G.operations, axis1=1, axis2=2)


def _axial(G):
    return np.linalg.det(G.operations) * _vector(G)


def _quadrupole(G):  # symmetric traceless rank 2 (l = 2): (χ(g)² + χ(g²))/2 - 1
    chi = _vector(G)
    chi2 = np.trace(np.einsum("gab,gbc->gac", G.operations, G.operations), axis1=1, axis2=2)
    return (chi**2 + chi2) / 2 - 1


DECOMPOSITIONS = [
    ("m-3m", _vector, {"T1u": 1}), ("m-3m", _axial, {"T1g": 1}), ("m-3m", _quadrupole, {"Eg": 1, "T2g": 1}),
    ("-43m", _vector, {"T2": 1}), ("-43m", _axial, {"T1": 1}), ("432", _vector, {"T1": 1}),
    ("m-3", _vector, {"Tu": 1}), ("23", _vector, {"T": 1}), ("m-3", _quadrupole, {"Eg": 1, "Tg": 1}),
    ("6/mmm", _vector, {"A2u": 1, "E1u": 1}), ("6/mmm", _axial, {"A2g": 1, "E1g": 1}),
    ("6/mmm", _quadrupole, {"A1g": 1, "E1g": 1, "E2g": 1}), ("6", _vector, {"A": 1, "E1": 1}),
    ("-6m2", _vector, {"E'": 1, "A2''": 1}), ("-6m2", _axial, {"A2'": 1, "E''": 1}),
    ("-6", _vector, {"E'": 1, "A''": 1}), ("6/m", _vector, {"Au": 1, "E1u": 1}),
    ("4/mmm", _vector, {"A2u": 1, "Eu": 1}), ("4", _vector, {"A": 1, "E": 1}), ("-4", _vector, {"B": 1, "E": 1}),
    ("-3m", _vector, {"A2u": 1, "Eu": 1}), ("-3", _vector, {"Au": 1, "Eu": 1}), ("3", _vector, {"A": 1, "E": 1}),
    ("mmm", _axial, {"B1g": 1, "B2g": 1, "B3g": 1}), ("mm2", _vector, {"A1": 1, "B1": 1, "B2": 1}),
]


@pytest.mark.parametrize("hm,rep,expected", DECOMPOSITIONS)
def test_vector_axial_and_quadrupole_decompose_as_in_the_standard_tables(hm, rep, expected):
    G = point_group(hm)
    assert G.decompose(rep(G)) == expected


def test_spgrep_order_is_not_mulliken_order_and_is_mapped_explicitly():
    """spgrep lists O_h's irreps in its own order; our labels must follow the matrices."""
    G = point_group("m-3m")
    reps, _ = spgrep_real_irreps(G.lattice_operations)
    spgrep_chars = [np.trace(r, axis1=1, axis2=2) for r in reps]
    mapped = []
    for chi in spgrep_chars:
        hits = [lab for lab in G.irreps if np.allclose(G.character(lab), chi, atol=1e-12)]
        assert len(hits) == 1
        mapped.append(hits[0])
    assert sorted(mapped) == sorted(G.irreps)
    assert mapped != G.irreps  # the orders really differ: a positional mapping would be wrong


def test_weyl_trick_makes_a_non_orthogonal_representation_orthogonal():
    G = point_group("m-3m")
    rng = np.random.default_rng(1)
    S = rng.standard_normal((3, 3)) + 3 * np.eye(3)
    T = np.einsum("ij,gjk,kl->gil", S, G.matrices("T2u"), np.linalg.inv(S))
    assert orthogonality_error(T) > 0.1
    O = orthogonalize_rep(T)
    assert orthogonality_error(O) < 1e-13
    assert homomorphism_error(O, G.table) < 1e-13
    np.testing.assert_allclose(np.trace(O, axis1=1, axis2=2), G.character("T2u"), atol=1e-13)
    # an already orthogonal representation comes back unchanged
    np.testing.assert_allclose(orthogonalize_rep(G.matrices("Eg")), G.matrices("Eg"), atol=1e-14)


def test_unknown_label_raises_and_primes_are_accepted():
    G = point_group("-6m2")
    assert G.dim("E′") == 2 and G.dim("A2″") == 1 and G.dim("A2''") == 1
    with pytest.raises(KeyError):
        G.matrices("T1u")
