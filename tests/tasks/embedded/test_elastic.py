"""Born (clamped-ion) elastic tensor of pair potentials: analytic fcc/B2 values, finite differences of the
energy, index and Cauchy symmetry, point-group invariance and rotation covariance."""
from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from zoo.tasks.embedded import elastic as el
from zoo.tensors import to_voigt
from zoo.symmetry import cartesian_point_group, rotate_tensor, symmetrize_tensor

GPA = el.EV_PER_A3_TO_GPA


def fcc(a, element="Ar"):
    """Conventional fcc cell (4 atoms, exact coordinates)."""
    coords = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]
    return Structure(Lattice.cubic(a), [element] * 4, coords)


def lj_derivs(r, rm, eps):
    q6 = (rm / r) ** 6
    return 12 * eps / r * (q6 - q6**2), eps / r**2 * (156 * q6**2 - 84 * q6)


def morse_derivs(r, rm, eps, alpha_rm=6.0):
    a = alpha_rm / rm
    u = np.exp(-a * (r - rm))
    return 2 * a * eps * (u - u * u), 2 * a * a * eps * (2 * u * u - u)


def assert_cubic_nn(C, a, k_eff):
    """Nearest-neighbour fcc, central forces: per atom volume a³/4, 12 neighbours at (±a/2, ±a/2, 0)...
    C11 = (1/2Ω) Σ k x⁴/r² = (4/2a³) k a² = 2k/a; C12 = C44 = (4/2a³) k a²/2 = k/a, k = φ'' - φ'/r."""
    V = to_voigt(C, "stiffness")
    c11, c12 = 2 * k_eff / a * GPA, k_eff / a * GPA
    expect = np.zeros((6, 6))
    expect[:3, :3] = c12
    expect[[0, 1, 2], [0, 1, 2]] = c11
    expect[[3, 4, 5], [3, 4, 5]] = c12  # Cauchy: C44 = C12
    assert np.abs(V - expect).max() < 1e-10 * c11


def test_fcc_lj_at_the_minimum_golden():
    rm, eps = 3.4, 0.0104  # Å, eV (argon-like, written here as model numbers)
    a = np.sqrt(2) * rm  # nearest neighbours sit exactly at the LJ minimum: φ' = 0
    # Cutoff between the first (a/√2 = 3.4 Å) and second (a = 4.81 Å) shells, switch fully off at r0.
    C = el.born_elastic_tensor(fcc(a), potential="lj", params={"Ar": (rm, eps)}, cutoff=4.4, switch_width=0.5)
    k = 72 * eps / rm**2  # φ''(r_m) of LJ
    assert_cubic_nn(C, a, k)
    stress = el.virial_stress(fcc(a), potential="lj", params={"Ar": (rm, eps)}, cutoff=4.4, switch_width=0.5)
    assert np.abs(stress).max() < 1e-12


@pytest.mark.parametrize("stretch", [0.97, 1.04])
def test_fcc_morse_off_equilibrium_golden(stretch):
    """Away from the minimum φ' ≠ 0 enters as φ'' - φ'/r, and the stress is σ = 4φ'/(a r0) I."""
    rm, eps = 2.5, 0.4
    r0 = stretch * rm
    a = np.sqrt(2) * r0
    kw = dict(potential="morse", params={"Cu": (rm, eps)}, cutoff=1.3 * r0, switch_width=0.1 * r0)
    C = el.born_elastic_tensor(fcc(a, "Cu"), **kw)
    d1, d2 = morse_derivs(r0, rm, eps)
    assert_cubic_nn(C, a, d2 - d1 / r0)
    # σ_xx = (1/2Ω) Σ φ'/r x² with Σ x² = 8 (a/2)² = 2a² over the 12 neighbours.
    sigma = el.virial_stress(fcc(a, "Cu"), **kw)
    assert np.allclose(sigma, 4 * d1 / (a * r0) * GPA * np.eye(3), rtol=1e-12, atol=1e-12)
    assert np.sign(sigma[0, 0]) == np.sign(stretch - 1)  # stretched bonds: tensile (positive)


def test_b2_lorentz_berthelot_mixing_golden():
    """CsCl-type AB with only A-B nearest neighbours inside the cutoff: the pair uses r_m = (r_A + r_B)/2,
    eps = sqrt(eps_A eps_B). 8 neighbours at (±a/2)³, V = a³ per 2 atoms: C11 = C12 = C44 = 2k/(3a)."""
    rA, rB, eA, eB = 2.6, 3.4, 0.09, 0.25
    r_ab = 0.5 * (rA + rB)
    a = 2 * r_ab / np.sqrt(3)
    s = Structure(Lattice.cubic(a), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    C = el.born_elastic_tensor(s, potential="lj", params={"Na": (rA, eA), "Cl": (rB, eB)},
                               cutoff=0.95 * a, switch_width=0.05 * a)
    k = 72 * np.sqrt(eA * eB) / r_ab**2
    V = to_voigt(C, "stiffness")
    c = 2 * k / (3 * a) * GPA
    assert np.allclose(V[:3, :3], c, rtol=1e-12) and np.allclose(np.diag(V)[3:], c, rtol=1e-12)
    assert np.abs(V[:3, 3:]).max() < 1e-12 * c and np.abs(V[3:, 3:] - np.diag(np.diag(V)[3:])).max() < 1e-12 * c


def _lagrangian_strain_energy(structure, eta, **kw):
    w, v = np.linalg.eigh(np.eye(3) + 2 * eta)
    F = v @ np.diag(np.sqrt(w)) @ v.T  # symmetric stretch with F^T F = I + 2η
    s = Structure(Lattice(structure.lattice.matrix @ F.T), structure.species, structure.frac_coords)
    return el.pair_energy(s, **kw)


@pytest.mark.parametrize("kw", [dict(potential="morse"), dict(potential="lj", params="uff")],
                         ids=["morse-covalent", "lj-uff"])
def test_born_term_is_the_second_strain_derivative_of_the_energy(kw):
    """Triclinic, three atoms, default per-pair cutoffs (pairs inside the switching region included):
    C = (1/V) ∂²E/∂η², σ = (1/V) ∂E/∂η by central differences of the total energy."""
    s = Structure(Lattice.from_parameters(4.1, 4.7, 5.3, 80, 95, 104), ["Na", "Cl", "Cl"],
                  [[0, 0, 0], [0.4, 0.55, 0.45], [0.1, 0.7, 0.3]])
    C = to_voigt(el.born_elastic_tensor(s, **kw), "stiffness")
    sigma = to_voigt(el.virial_stress(s, **kw), "stress")
    pairs = [(0, 0), (1, 1), (2, 2), (1, 2), (0, 2), (0, 1)]

    def unit(p):
        e = np.zeros((3, 3))
        e[p] += 0.5
        e[p[::-1]] += 0.5
        return e

    h = 2e-4
    scale = GPA / s.volume
    E = lambda eta: _lagrangian_strain_energy(s, eta, **kw)  # noqa: E731
    for I, p in enumerate(pairs):
        d = (E(h * unit(p)) - E(-h * unit(p))) / (2 * h) * scale
        assert d == pytest.approx(sigma[I], rel=1e-6, abs=1e-6 * np.abs(sigma).max())
        for J in range(I, 6):
            a, b = h * unit(p), h * unit(pairs[J])
            num = (E(a + b) - E(a - b) - E(b - a) + E(-a - b)) / (4 * h * h) * scale
            assert num == pytest.approx(C[I, J], abs=2e-5 * np.abs(C).max()), (I, J)


def test_index_symmetry_and_cauchy_relations():
    s = Structure(Lattice.from_parameters(4.3, 5.1, 4.8, 84, 99, 107), ["Mg", "O", "O"],
                  [[0.1, 0.2, 0.3], [0.6, 0.5, 0.4], [0.3, 0.8, 0.9]])
    C = el.born_elastic_tensor(s)
    tol = 1e-12 * np.abs(C).max()
    for perm in [(1, 0, 2, 3), (0, 1, 3, 2), (2, 3, 0, 1)]:  # ijkl = jikl = ijlk = klij
        assert np.abs(C - C.transpose(perm)).max() < tol
    assert np.abs(C - C.transpose(0, 2, 1, 3)).max() < tol  # ijkl = ikjl: the Cauchy relations
    V = to_voigt(C, "stiffness")
    assert V[0, 1] == pytest.approx(V[5, 5]) and V[1, 2] == pytest.approx(V[3, 3]) and V[0, 3] == pytest.approx(V[4, 5])


SYMMETRIC_CRYSTALS = {
    # name: (space group, lattice, species, coords, expected number of point-group operations)
    "rutile TiO2": ("P4_2/mnm", Lattice.tetragonal(4.594, 2.959), ["Ti", "O"], [[0, 0, 0], [0.305, 0.305, 0]], 16),
    "wurtzite ZnO": ("P6_3mc", Lattice.hexagonal(3.25, 5.207), ["Zn", "O"],
                     [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.382]], 12),
    "alpha-quartz SiO2": ("P3_221", Lattice.hexagonal(4.913, 5.405), ["Si", "O"],
                          [[0.4697, 0, 0], [0.4135, 0.2669, 0.1191]], 6),
    "corundum Al2O3": ("R-3c", Lattice.hexagonal(4.759, 12.991), ["Al", "O"],
                       [[0, 0, 0.35216], [0.30624, 0, 0.25]], 12),
    "perovskite SrTiO3": ("Pm-3m", Lattice.cubic(3.905), ["Sr", "Ti", "O"],
                          [[0.5, 0.5, 0.5], [0, 0, 0], [0.5, 0, 0]], 48),
    "monoclinic P2_1/c": ("P2_1/c", Lattice.monoclinic(5.1, 6.2, 7.3, 104.0), ["Na", "Cl"],
                          [[0.11, 0.23, 0.37], [0.61, 0.17, 0.08]], 4),
}


def exact_structure(sg, lattice, species, coords):
    """Structure.from_spacegroup, with every site regenerated exactly from spglib's operations.

    pymatgen rounds generated fractional coordinates to 10 decimals (1/3 -> 0.3333333333), which
    breaks the symmetry at ~1e-10 relative; the orbits here are exact to float precision.
    """
    import spglib

    s = Structure.from_spacegroup(sg, lattice, species, coords)
    number = s.get_space_group_info()[1]
    hall = next(h for h in range(1, 531) if spglib.get_spacegroup_type(h).number == number)
    db = spglib.get_symmetry_from_database(hall)
    sites, kinds = [], []
    for sp, x in zip(species, np.asarray(coords, dtype=np.float64)):
        for W, t in zip(db["rotations"], db["translations"]):
            y = (W @ x + t) % 1.0
            y[np.isclose(y, 1.0, atol=1e-12)] = 0.0
            if not any(np.allclose(y, z, atol=1e-8) for z in sites):
                sites.append(y)
                kinds.append(sp)
    exact = Structure(lattice, kinds, sites)
    assert len(exact) == len(s), "regenerated orbits differ from pymatgen's"
    return exact


@pytest.mark.parametrize("name", list(SYMMETRIC_CRYSTALS))
def test_point_group_is_respected(name):
    sg, lat, species, coords, n_ops = SYMMETRIC_CRYSTALS[name]
    s = exact_structure(sg, lat, species, coords)
    ops = cartesian_point_group(s)
    assert len(ops) == n_ops
    C = el.born_elastic_tensor(s)
    assert np.linalg.norm(C - symmetrize_tensor(C, ops)) < 1e-10 * np.linalg.norm(C)
    sigma = el.virial_stress(s)
    assert np.linalg.norm(sigma - symmetrize_tensor(sigma, ops)) < 1e-10 * max(np.linalg.norm(sigma), 1e-12)


def test_rotation_covariance():
    """Rotating the crystal rotates the tensor: C'(R·crystal) = R⊗R⊗R⊗R C."""
    rng = np.random.default_rng(0)
    sg, lat, species, coords, _ = SYMMETRIC_CRYSTALS["alpha-quartz SiO2"]
    s = exact_structure(sg, lat, species, coords)
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    R = q * np.sign(np.diag(r))
    if np.linalg.det(R) < 0:
        R[:, 0] *= -1
    s_rot = Structure(Lattice(s.lattice.matrix @ R.T), s.species, s.frac_coords)
    for kw in (dict(potential="morse"), dict(potential="lj")):
        C = el.born_elastic_tensor(s, **kw)
        C_rot = el.born_elastic_tensor(s_rot, **kw)
        assert np.linalg.norm(C_rot - rotate_tensor(C, R)) < 1e-10 * np.linalg.norm(C)


def test_switching_function_is_c2():
    r_on, r_c = np.array([4.0]), np.array([5.0])
    s, ds, d2s = el._switch(np.array([3.9, 4.0, 5.0, 5.1]), r_on, r_c)
    assert np.allclose(s, [1, 1, 0, 0]) and np.allclose(ds, 0) and np.allclose(d2s, 0)
    r = np.linspace(4.05, 4.95, 7)
    h = 1e-5
    sp, _, _ = el._switch(r + h, r_on, r_c)
    sm, _, _ = el._switch(r - h, r_on, r_c)
    s0, ds0, d2s0 = el._switch(r, r_on, r_c)
    assert np.allclose((sp - sm) / (2 * h), ds0, atol=1e-8)
    assert np.allclose((sp - 2 * s0 + sm) / h**2, d2s0, atol=1e-4)


def test_tensor_is_continuous_when_a_shell_crosses_the_cutoff():
    """fcc second shell (at r = a) moves through r_c: no jump in C."""
    rm, eps, rc = 3.4, 0.0104, 5.0
    kw = dict(potential="lj", params={"Ar": (rm, eps)}, cutoff=rc, switch_width=0.4)
    below = el.born_elastic_tensor(fcc(rc * (1 - 1e-9)), **kw)
    above = el.born_elastic_tensor(fcc(rc * (1 + 1e-9)), **kw)
    assert np.abs(below - above).max() < 1e-6 * np.abs(below).max()


def test_parameter_tables():
    assert sorted(el.UFF_PARAMS) == list(range(1, 104))
    x, d = el.UFF_PARAMS[1]
    assert x == 2.886 and d == pytest.approx(0.044 * 0.0433641, rel=1e-6)
    rm, eps = el.element_parameters([8, 14], "covalent")
    assert np.allclose(rm, [2 * 0.66, 2 * 1.11]) and np.allclose(eps, 1.0)  # Cordero 2008: O 0.66, Si 1.11 Å
    rm, eps = el.element_parameters([8], {"O": (3.0, 0.2)})
    assert rm[0] == 3.0 and eps[0] == 0.2


def test_errors_name_the_problem():
    s = fcc(3.6, "Cu")
    with pytest.raises(ValueError, match="potential"):
        el.born_elastic_tensor(s, potential="buckingham")
    with pytest.raises(ValueError, match="Cu"):
        el.born_elastic_tensor(s, params={"Ar": (3.0, 0.1)})
    with pytest.raises(ValueError, match="overlaps"):
        el.born_elastic_tensor(Structure(Lattice.cubic(4.0), ["Cu", "Cu"], [[0, 0, 0], [0.01, 0, 0]]))
    with pytest.raises(ValueError, match="Z=1..96"):
        el.born_elastic_tensor(fcc(5.0, "Cf"), potential="morse")
    disordered = Structure(Lattice.cubic(3.6), [{"Cu": 0.5, "Au": 0.5}], [[0, 0, 0]])
    with pytest.raises(ValueError, match="partially occupied"):
        el.born_elastic_tensor(disordered)
