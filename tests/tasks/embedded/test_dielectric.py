"""Dipole-interaction dielectric model: golden physics values, Ewald convergence, symmetry, invariances."""
from __future__ import annotations

import math

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from zoo.tasks.embedded.dielectric import (
    POLARIZABILITY,
    POLARIZABILITY_AU,
    PolarizationCatastrophe,
    dielectric_tensor,
    dipole_tensor,
    polarizabilities,
)
from zoo.tasks.embedded.generator import generate_crystals
from zoo.symmetry import cartesian_point_group, symmetrize_tensor


def _cubic(kind: str, a: float, element: str) -> tuple[Structure, float]:
    """One-atom primitive cell of a cubic Bravais lattice and its volume (Å^3)."""
    h = a / 2.0
    rows = {
        "sc": [[a, 0, 0], [0, a, 0], [0, 0, a]],
        "bcc": [[-h, h, h], [h, -h, h], [h, h, -h]],
        "fcc": [[0, h, h], [h, 0, h], [h, h, 0]],
    }[kind]
    s = Structure(Lattice(rows), [element], [[0.0, 0.0, 0.0]])
    return s, {"sc": a**3, "bcc": a**3 / 2, "fcc": a**3 / 4}[kind]


@pytest.fixture(scope="module")
def crystals():
    """Generated crystals, one per crystal system at least (seed fixed)."""
    cs = generate_crystals(60, 11, progress=False)
    assert len({c.crystal_system for c in cs}) == 7
    return cs


def _labelled(crystals, k_per_system=2):
    out, seen = [], {}
    for c in crystals:
        if seen.get(c.crystal_system, 0) >= k_per_system:
            continue
        try:
            eps = dielectric_tensor(c.structure, name=c.id)
        except PolarizationCatastrophe:
            continue
        seen[c.crystal_system] = seen.get(c.crystal_system, 0) + 1
        out.append((c, eps))
    assert len(seen) == 7, seen
    return out


# --------------------------------------------------------------------------------------------------
# Golden values
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["sc", "bcc", "fcc"])
@pytest.mark.parametrize("element,a", [("Ar", 3.6), ("Xe", 4.9), ("Si", 5.0), ("Na", 8.0)])
def test_clausius_mossotti_cubic_bravais(kind, element, a):
    """Point dipoles (no damping) on a cubic Bravais lattice: (ε-1)/(ε+2) = 4πα/(3V) exactly."""
    s, volume = _cubic(kind, a, element)
    alpha = POLARIZABILITY[element]
    x = 4.0 * math.pi * alpha / (3.0 * volume)
    assert x < 0.95, "choose a lattice below the catastrophe"
    eps = dielectric_tensor(s, damping=None, min_eigenvalue=0.0)
    np.testing.assert_allclose(eps, np.eye(3) * eps[0, 0], atol=1e-12)
    cm = (eps[0, 0] - 1.0) / (eps[0, 0] + 2.0)
    assert cm == pytest.approx(x, rel=1e-10, abs=0)


def test_clausius_mossotti_with_damped_neighbours():
    """sc lattice with the 6 nearest neighbours inside Thole's range (u < a) and all others outside.

    The linear Thole correction then adds Σ_nn (λ5 - λ3)/r^3 · 1 (λ5 - λ3 = 4v^3(v - 1), v = r/(a α^{1/3}))
    to the Lorentz factor 4π/(3V): ε = 1 + (4πα/V) / (1 - α L). The bare model is catastrophic here.
    """
    a_lat, el = 2.6, "Si"
    alpha = POLARIZABILITY[el]
    thole_a = 1.7278
    s, volume = _cubic("sc", a_lat, el)
    v_nn = a_lat / (thole_a * alpha ** (1 / 3))
    v_2nd = math.sqrt(2) * a_lat / (thole_a * alpha ** (1 / 3))
    assert v_nn < 1.0 <= v_2nd
    L = 4 * math.pi / (3 * volume) + 6 * 4 * v_nn**3 * (v_nn - 1) / a_lat**3
    expected = 1 + (4 * math.pi * alpha / volume) / (1 - alpha * L)
    eps = dielectric_tensor(s, damping="thole")
    np.testing.assert_allclose(eps, expected * np.eye(3), rtol=1e-10, atol=1e-12)
    with pytest.raises(PolarizationCatastrophe):
        dielectric_tensor(s, damping=None)


def test_damping_inactive_when_atoms_far_apart():
    """When every pair (incl. periodic images) has u >= a, linear Thole damping changes nothing."""
    s = Structure(Lattice.from_parameters(5.1, 5.6, 6.3, 80, 95, 105), ["Cl", "O"],
                  [[0.1, 0.2, 0.3], [0.55, 0.7, 0.8]])
    a = polarizabilities(s)
    d_min = min(s.get_distance(0, 1), *s.lattice.abc)
    assert d_min > 1.7278 * a.max() ** (1 / 3)
    np.testing.assert_allclose(dielectric_tensor(s, damping="thole"), dielectric_tensor(s, damping=None),
                               rtol=1e-13, atol=1e-13)


def test_polarizability_table_units():
    """Table in Å^3 = recommended a.u. values × a0^3; argon's 11.083 a.u. is 1.6423 Å^3."""
    assert POLARIZABILITY["Ar"] == pytest.approx(11.083 * 0.529177210903**3, rel=1e-12)
    assert POLARIZABILITY["Ar"] == pytest.approx(1.6423, abs=1e-4)
    assert set(POLARIZABILITY) == set(POLARIZABILITY_AU)


# --------------------------------------------------------------------------------------------------
# Ewald sum
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("damping", [None, "thole", "thole_exp"])
def test_ewald_parameter_independence(crystals, damping):
    """T and ε do not depend on the splitting η (tested over a factor 6), for every damping model."""
    c = next(c for c in crystals if c.crystal_system == "triclinic" and len(set(c.structure.species)) > 1)
    s = c.structure
    a = polarizabilities(s)
    L, f = s.lattice.matrix, s.frac_coords
    v13 = s.volume ** (1 / 3)
    etas = [1.0 / v13, 2.5 / v13, 6.0 / v13]
    Ts = [dipole_tensor(L, f, a, damping=damping, eta=e) for e in etas]
    scale = np.abs(Ts[0]).max()
    for T in Ts[1:]:
        assert np.abs(T - Ts[0]).max() <= 1e-10 * scale
    if damping is not None:
        eps = [dielectric_tensor(s, damping=damping, eta=e, min_eigenvalue=0.0) for e in etas]
        for e in eps[1:]:
            np.testing.assert_allclose(e, eps[0], rtol=1e-10, atol=1e-10)


def test_dipole_tensor_trace_sum_rule(crystals):
    """Undamped: every 3x3 block has trace 4π/V. The spherical lattice sum of the traceless 3r̂r̂ - 1
    vanishes term by term, so only the tin-foil surface term (4π/3V)·1 is left in the trace."""
    for c in crystals[:6]:
        s = c.structure
        n = len(s)
        T = dipole_tensor(s.lattice.matrix, s.frac_coords, damping=None).reshape(n, 3, n, 3)
        traces = np.einsum("iaja->ij", T)
        np.testing.assert_allclose(traces, 4 * math.pi / s.volume, rtol=1e-10)
        # ... and damping changes it (the Thole correction is not traceless): the rule is not trivial.
        Td = dipole_tensor(s.lattice.matrix, s.frac_coords, polarizabilities(s)).reshape(n, 3, n, 3)
        assert np.abs(np.einsum("iaja->ij", Td) - 4 * math.pi / s.volume).max() > 1e-3


# --------------------------------------------------------------------------------------------------
# Tensor properties
# --------------------------------------------------------------------------------------------------
def test_symmetric_and_positive_definite(crystals):
    for c, eps in _labelled(crystals):
        np.testing.assert_array_equal(eps, eps.T)
        assert np.linalg.eigvalsh(eps).min() > 1.0, c.id  # ε - 1 = (4π/V) S^T M^-1 S, M positive definite


def test_point_group_respected(crystals):
    """Neumann's principle: the tensor is invariant under the crystal's point group, every crystal system."""
    for c, eps in _labelled(crystals):
        ops = cartesian_point_group(c.structure)
        sym = symmetrize_tensor(eps, ops)
        assert np.abs(sym - eps).max() <= 1e-10 * np.abs(eps).max(), (c.id, c.point_group)
        if c.crystal_system == "cubic":
            np.testing.assert_allclose(eps, eps[0, 0] * np.eye(3), atol=1e-10)
        if c.crystal_system in ("tetragonal", "hexagonal", "trigonal"):
            w = np.linalg.eigvalsh(eps)
            # uniaxial: two equal eigenvalues
            assert min(abs(w[1] - w[0]), abs(w[2] - w[1])) <= 1e-10 * w.max(), c.id
    # The check can fail: a generic symmetric tensor is not invariant under a non-trivial group.
    c = next(c for c in crystals if c.crystal_system == "cubic")
    ops = cartesian_point_group(c.structure)
    generic = np.array([[3.0, 0.2, 0.1], [0.2, 2.0, 0.3], [0.1, 0.3, 1.0]])
    assert np.abs(symmetrize_tensor(generic, ops) - generic).max() > 0.1


def _random_rotation(rng, proper=True):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q @ np.diag(np.sign(np.diag(r)))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q if proper else -q


@pytest.mark.parametrize("proper", [True, False])
def test_rotation_covariance(crystals, proper):
    """Rotating lattice and positions by R rotates ε: ε' = R ε R^T (also for improper R)."""
    rng = np.random.default_rng(3)
    for c, eps in _labelled(crystals, k_per_system=1):
        R = _random_rotation(rng, proper)
        s = c.structure
        rotated = Structure(Lattice(s.lattice.matrix @ R.T), s.species, s.frac_coords)
        np.testing.assert_allclose(dielectric_tensor(rotated), R @ eps @ R.T, rtol=1e-10, atol=1e-10)


def test_supercell_and_site_order_invariance(crystals):
    """ε is intensive: a (non-diagonal) supercell and a permutation of the sites give the same tensor."""
    for c, eps in _labelled(crystals, k_per_system=1)[:4]:
        sc = c.structure.copy()
        sc.make_supercell([[1, 1, 0], [0, 1, 0], [0, 0, 2]])
        np.testing.assert_allclose(dielectric_tensor(sc), eps, rtol=1e-10, atol=1e-10)
        perm = np.random.default_rng(0).permutation(len(c.structure))
        s = c.structure
        shuffled = Structure(s.lattice, [s.species[k] for k in perm], s.frac_coords[perm] + 1.0)  # + lattice shift
        np.testing.assert_allclose(dielectric_tensor(shuffled), eps, rtol=1e-10, atol=1e-10)


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:No Pauling electronegativity")
def test_catastrophe_is_detected_and_named():
    s, volume = _cubic("sc", 2.0, "Na")  # 4πα/(3V) >> 1: point dipoles diverge
    with pytest.raises(PolarizationCatastrophe, match=r"'my-crystal'.*Na") as info:
        dielectric_tensor(s, damping=None, name="my-crystal")
    assert isinstance(info.value, ValueError)
    # Just below the bare catastrophe, strict positive definiteness passes and ε is large but finite.
    alpha = POLARIZABILITY["Ar"]
    a = (4 * math.pi * alpha / 3 / 0.99) ** (1 / 3)
    s, volume = _cubic("sc", a, "Ar")
    eps = dielectric_tensor(s, damping=None, min_eigenvalue=0.0)
    assert eps[0, 0] == pytest.approx((1 + 2 * 0.99) / (1 - 0.99), rel=1e-8)
    with pytest.raises(PolarizationCatastrophe):
        dielectric_tensor(s, damping=None)  # default threshold 0.05 rejects it (λ_min = 0.01)


def test_bad_inputs_have_clear_errors():
    s = Structure(Lattice.cubic(4.0), ["U"], [[0, 0, 0]])
    with pytest.raises(ValueError, match="no polarisability for element 'U'"):
        dielectric_tensor(s)
    s = Structure(Lattice.cubic(4.0), ["Si"], [[0, 0, 0]])
    with pytest.raises(ValueError, match="unknown damping"):
        dielectric_tensor(s, damping="tang-toennies")
    with pytest.raises(ValueError, match="alpha must be"):
        dielectric_tensor(s, alpha=np.array([1.0, 2.0]))
