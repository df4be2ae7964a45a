"""The polarisable read-out's physics (zoo.nn.dipole): with the tabulated free-atom polarisabilities it
reproduces the embedded_dielectric task's labels (the Applequist-Thole model, zoo.tasks.embedded.dielectric),
its numbers do not depend on the padded solve size, Thole's correction is the labeller's, and both backends
agree on values and gradients on a padded batch (float64)."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
from pymatgen.core import Lattice, Structure  # noqa: E402

from zoo.backend import jax as bj  # noqa: E402
from zoo.backend import torch as bt  # noqa: E402
from zoo.graphs import GraphSpec, build_graphs, collate, pad_batch  # noqa: E402
from zoo.graphs.ewald import THOLE_A as EWALD_THOLE_A  # noqa: E402
from zoo.graphs.ewald import thole_factors  # noqa: E402
from zoo.graphs.dipole import DAMPING_RADIUS  # noqa: E402
from zoo.nn.dipole import THOLE_A, alpha_max, susceptibility, thole_correction  # noqa: E402
from zoo.tasks.embedded.dielectric import dielectric_tensor, polarizabilities  # noqa: E402

# the network's radius does not matter: the damping uses the featuriser's own 8 Å pairs
SPEC = GraphSpec(rule="radius", radius=5.0, featurizer="dipole")


def crystals() -> list[Structure]:
    rocksalt = Structure(Lattice.cubic(5.0), ["Si"] * 4 + ["O"] * 4,
                         [[0, 0, 0], [.5, .5, 0], [.5, 0, .5], [0, .5, .5], [.5, 0, 0], [0, .5, 0], [0, 0, .5], [.5, .5, .5]])
    triclinic = Structure(Lattice.from_parameters(4.1, 4.6, 7.3, 80, 95, 100), ["Mg", "O", "Si", "O"],
                          [[0, 0, 0], [.5, .1, .2], [.3, .6, .5], [.8, .4, .8]])
    hexagonal = Structure(Lattice.hexagonal(3.1, 5.0), ["Al", "N", "Al", "N"],
                          [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.38], [2 / 3, 1 / 3, 0.5], [2 / 3, 1 / 3, 0.88]])
    return [rocksalt, triclinic, hexagonal]


@pytest.fixture(scope="module")
def setup():
    structures = crystals()
    graphs, failures = build_graphs(structures, SPEC, cache=False, progress=False)
    assert not failures
    alpha = np.concatenate([polarizabilities(s) for s in structures])
    return structures, graphs, alpha


def test_table_polarisabilities_reproduce_the_task_labels(setup):
    """χ from the batched solve equals ε - 1 of the labeller (dense eigen-decomposition, per crystal) to the
    Ewald accuracy, and a larger solve size (more identity padding per crystal) changes nothing."""
    structures, graphs, alpha = setup
    b = bt.to_torch(collate(graphs), dtype=torch.float64)
    a = torch.as_tensor(alpha)
    chi = susceptibility(a, b, bt, max_atoms=8).numpy()
    for k, s in enumerate(structures):
        ref = dielectric_tensor(s) - np.eye(3)
        assert np.abs(ref).max() > 1.0
        np.testing.assert_allclose(chi[k], ref, rtol=0, atol=1e-9 * np.abs(ref).max())
    chi13 = susceptibility(a, b, bt, max_atoms=13).numpy()
    np.testing.assert_allclose(chi13, chi, rtol=0, atol=1e-12 * np.abs(chi).max())
    # the hexagonal crystal is uniaxial: two equal principal values, a different third
    w = np.linalg.eigvalsh(chi[2])
    gaps = sorted([abs(w[1] - w[0]), abs(w[2] - w[1])])
    assert gaps[0] < 1e-9 * w[2] and gaps[1] > 1e-3 * w[2]


def test_thole_correction_is_the_labellers():
    """The read-out's damping term equals [3(λ5-1) r̂r̂ᵀ - (λ3-1) 1]/r³ of the labeller's Thole factors, and
    vanishes at and beyond u = a; the constant is the same paper's."""
    assert THOLE_A == EWALD_THOLE_A["thole"]
    # the bound on α keeps every damped pair inside the featuriser's reach, and the table's α under it
    assert alpha_max(DAMPING_RADIUS) * THOLE_A**3 == pytest.approx(DAMPING_RADIUS**3) and alpha_max(DAMPING_RADIUS) > 59.5
    rng = np.random.default_rng(0)
    vec = rng.normal(size=(50, 3)) * 1.5
    ai, aj = rng.uniform(0.5, 30.0, 50), rng.uniform(0.5, 30.0, 50)
    got = thole_correction(torch.as_tensor(vec), torch.as_tensor(ai), torch.as_tensor(aj), THOLE_A, bt).numpy()
    r = np.linalg.norm(vec, axis=1)
    l3m1, l5m1 = thole_factors(r / (ai * aj) ** (1 / 6), "thole", THOLE_A)
    rh = vec / r[:, None]
    want = (3 * l5m1 / r**3)[:, None, None] * rh[:, :, None] * rh[:, None, :] - (l3m1 / r**3)[:, None, None] * np.eye(3)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    far = r / (ai * aj) ** (1 / 6) >= THOLE_A
    assert far.any() and (~far).any() and np.all(got[far] == 0.0)


def test_backends_agree_with_gradients_on_a_padded_batch(setup):
    """Same χ and the same dχ/dα (a fixed random contraction) in torch (unpadded) and JAX (padded: padding
    atoms, edges, pairs and graphs), float64."""
    _, graphs, alpha = setup
    collated = collate(graphs)
    w = np.random.default_rng(1).normal(size=(len(graphs), 3, 3))

    b = bt.to_torch(collated, dtype=torch.float64)
    a = torch.tensor(alpha, requires_grad=True)
    chi_t = susceptibility(a, b, bt, max_atoms=8)
    (chi_t * torch.as_tensor(w)).sum().backward()

    padded = pad_batch(collated, n_nodes=len(alpha) + 5, n_edges=int(collated["senders"].shape[0]) + 7, n_graphs=len(graphs) + 2)
    assert padded["dipole_i"].shape[0] > collated["dipole_i"].shape[0]  # the pair set is padded too
    with jax.enable_x64(True):
        bjx = bj.to_jax(padded, dtype=jax.numpy.float64)
        a_pad = np.concatenate([alpha, np.zeros(5)])

        def f(av):
            chi = susceptibility(av, bjx, bj, max_atoms=int(np.sqrt(bjx["dipole_i"].shape[0])))
            return chi

        chi_j = np.asarray(f(jax.numpy.asarray(a_pad)))
        grad_j = np.asarray(jax.grad(lambda av: (f(av)[: len(graphs)] * w).sum())(jax.numpy.asarray(a_pad)))
    np.testing.assert_allclose(chi_j[: len(graphs)], chi_t.detach().numpy(), rtol=1e-12, atol=1e-12)
    assert np.all(chi_j[len(graphs):] == 0.0)
    np.testing.assert_allclose(grad_j[: len(alpha)], a.grad.numpy(), rtol=1e-10, atol=1e-12)
    assert np.all(np.isfinite(grad_j))


def test_regularised_inverse_has_no_pole():
    """delta > 0: on crystals far from the catastrophe χ moves by ~(δ/λ)² only; on rock-salt NaCl with the
    free-atom α (past the catastrophe: K has an eigenvalue of -0.35, the labeller refuses it) χ and dχ/dα stay
    finite, and the exact solve is the δ -> 0 limit."""
    good = crystals()[:2]
    graphs, _ = build_graphs(good, SPEC, cache=False, progress=False)
    b = bt.to_torch(collate(graphs), dtype=torch.float64)
    a = torch.as_tensor(np.concatenate([polarizabilities(s) for s in good]))
    exact = susceptibility(a, b, bt, max_atoms=8)
    reg = susceptibility(a, b, bt, max_atoms=8, delta=1e-3)
    assert 0 < float((reg - exact).abs().max()) <= 1e-4 * float(exact.abs().max())

    nacl = Structure(Lattice.cubic(5.64), ["Na"] * 4 + ["Cl"] * 4,
                     [[0, 0, 0], [.5, .5, 0], [.5, 0, .5], [0, .5, .5], [.5, 0, 0], [0, .5, 0], [0, 0, .5], [.5, .5, .5]])
    g, _ = build_graphs([nacl], SPEC, cache=False, progress=False)
    bn = bt.to_torch(collate(g), dtype=torch.float64)
    an = torch.tensor(polarizabilities(nacl), requires_grad=True)
    chi = susceptibility(an, bn, bt, max_atoms=8, delta=0.01)
    chi.sum().backward()
    assert torch.isfinite(chi).all() and torch.isfinite(an.grad).all()
    assert float(chi.abs().max()) <= 4 * np.pi / nacl.volume * float(an.sum()) / (2 * 0.01) * 1.0001
