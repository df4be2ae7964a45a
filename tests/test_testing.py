"""zoo.testing: the public checks catch what they should (and pass for cgcnn / tfn in both backends)."""
from __future__ import annotations

import numpy as np
import pytest

from zoo.testing import (
    assert_backend_parity,
    assert_equivariant,
    equivariance_errors,
    predictor,
    random_crystals,
    random_rotation,
    relative_error,
    transform_structure,
)


@pytest.fixture(scope="module")
def crystals():
    return random_crystals(4, seed=3, max_atoms=6)


def cart(s) -> np.ndarray:
    return np.asarray(s.cart_coords, dtype=np.float64)


def same_points_mod_lattice(a: np.ndarray, b: np.ndarray, lattice: np.ndarray) -> bool:
    """Cartesian points a[k] and b[k] differ by a lattice vector (rows of ``lattice``), to 1e-9 Å."""
    df = np.linalg.solve(lattice.T, (a - b).T).T
    return bool(np.allclose(df, np.round(df), atol=1e-9))


# ------------------------------------------------------------------------------------ rotations
def test_random_rotation_is_haar_on_o3():
    rng = np.random.default_rng(0)
    Rs = np.stack([random_rotation(rng) for _ in range(4000)])
    assert Rs.dtype == np.float64
    np.testing.assert_allclose(Rs @ Rs.transpose(0, 2, 1), np.broadcast_to(np.eye(3), Rs.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(Rs), 1.0, atol=1e-12)
    # Haar moments on SO(3): E[R] = 0 and E[tr(R)^2] = 1 (the trivial irrep occurs once in 1 ⊗ 1).
    # QR without the sign correction of R's diagonal is not Haar and misses both by far more than 0.05.
    tr = np.trace(Rs, axis1=1, axis2=2)
    assert np.abs(Rs.mean(0)).max() < 0.05
    assert abs(tr.mean()) < 0.05 and abs((tr**2).mean() - 1.0) < 0.1
    assert np.allclose([np.linalg.det(random_rotation(rng, improper=True)) for _ in range(20)], -1.0)
    dets = np.array([np.linalg.det(random_rotation(rng, improper=None)) for _ in range(200)])
    assert set(np.round(dets).astype(int)) == {-1, 1}
    np.testing.assert_array_equal(random_rotation(5), random_rotation(np.random.default_rng(5)))  # seedable


# ------------------------------------------------------------------------------------ transformations
@pytest.mark.parametrize("improper", [False, True])
def test_transform_structure_rotation_moves_lattice_and_positions(crystals, improper):
    s = crystals[0]
    R = random_rotation(1, improper=improper)
    moved = transform_structure(s, R=R)
    L = np.asarray(moved.lattice.matrix)
    assert np.linalg.det(L) > 0  # an improper R gives a right-handed description of the mirrored crystal
    assert same_points_mod_lattice(cart(moved), cart(s) @ R.T, L)
    np.testing.assert_allclose(moved.distance_matrix, s.distance_matrix, atol=1e-10)
    assert [x.specie for x in moved] == [x.specie for x in s]
    assert s.lattice.matrix[0, 0] == crystals[0].lattice.matrix[0, 0]  # input untouched


def test_transform_structure_translation_permutation_supercell(crystals):
    s = next(c for c in crystals if len(c) > 1)
    t = np.array([0.3, -7.1, 2.2])  # Å
    moved = transform_structure(s, t=t)
    assert same_points_mod_lattice(cart(moved), cart(s) + t, np.asarray(s.lattice.matrix))
    assert np.all((moved.frac_coords >= 0) & (moved.frac_coords < 1))

    perm = np.roll(np.arange(len(s)), 1)
    permuted = transform_structure(s, perm=perm)
    np.testing.assert_allclose(cart(permuted), cart(s)[perm], atol=1e-12)
    assert [x.specie for x in permuted] == [s[k].specie for k in perm]

    m = [[1, 1, 0], [0, 2, 0], [0, 0, 1]]
    big = transform_structure(s, supercell=m)
    assert len(big) == 2 * len(s)
    assert big.volume == pytest.approx(2 * s.volume, rel=1e-12)
    assert big.composition.reduced_composition == s.composition.reduced_composition

    with pytest.raises(ValueError, match="permutation"):
        transform_structure(s, perm=[0] * len(s))
    with pytest.raises(ValueError, match="orthogonal"):
        transform_structure(s, R=2 * np.eye(3))
    with pytest.raises(ValueError, match="supercell"):
        transform_structure(s, supercell=[[1, 0, 0], [0, 1, 0], [0, 0, 0]])


# ------------------------------------------------------------------------------------ assert_equivariant
def neighbour_moment(rank: int, extensive: bool = False, radius: float = 6.0):
    """An exactly equivariant rank-n function: per-atom Σ_j w(Z_i, Z_j, d) r̂⊗…⊗r̂, mean (or sum) over atoms."""
    from zoo.graphs import GraphSpec, build_graph

    spec = GraphSpec(rule="radius", radius=radius)

    def predict(structures):
        out = []
        for s in structures:
            g = build_graph(s, spec)
            u = g.edge_vectors / g.distances[:, None]
            w = np.exp(-g.distances) * (1.0 + 0.1 * g.numbers[g.senders] - 0.07 * g.numbers[g.receivers])
            t = w
            for _ in range(rank):
                t = t[..., None] * u.reshape((-1,) + (1,) * (t.ndim - 1) + (3,))
            total = t.sum(0)
            out.append(total if extensive else total / g.n_nodes)
        return np.stack(out)

    return predict


@pytest.mark.parametrize("rank", [0, 1, 2, 3])
def test_exactly_equivariant_functions_pass(crystals, rank):
    errors = assert_equivariant(neighbour_moment(rank), crystals, rank, n_trials=1)
    assert set(errors) == {"rotation", "improper", "translation", "permutation", "supercell"}
    assert max(errors.values()) < 1e-12


def test_extensive_outputs_double_in_a_supercell(crystals):
    f = neighbour_moment(2, extensive=True)
    assert_equivariant(f, crystals, 2, n_trials=1, extensive=True)
    with pytest.raises(AssertionError, match="supercell"):
        assert_equivariant(f, crystals, 2, n_trials=1)


def test_fixed_tensor_is_not_equivariant(crystals):
    T = np.arange(9.0).reshape(3, 3) + 1.0  # not isotropic: rotating it changes it

    def fixed(structures):
        return np.broadcast_to(T, (len(structures), 3, 3)).copy()

    with pytest.raises(AssertionError, match="rotation") as info:
        assert_equivariant(fixed, crystals, rank=2)
    assert "improper" in str(info.value) and "translation" not in str(info.value).split("(all errors")[0]
    errors = equivariance_errors(fixed, crystals, 2)
    assert errors["rotation"] > 0.1 and errors["translation"] == errors["permutation"] == errors["supercell"] == 0.0


@pytest.mark.parametrize(
    "check, f",
    [
        # depends on the orientation of the cell
        ("rotation", lambda ss: np.array([s.lattice.matrix[0, 0] + s.lattice.matrix[1, 2] for s in ss])),
        # depends on where the origin is
        ("translation", lambda ss: np.array([np.sin(s.cart_coords).sum() for s in ss])),
        # depends on the order of the sites
        ("permutation", lambda ss: np.array([float(s[0].specie.Z) + 0.01 * s[-1].specie.Z for s in ss])),
        # depends on the choice of cell (extensive, but not declared so)
        ("supercell", lambda ss: np.array([float(len(s)) for s in ss])),
    ],
)
def test_each_check_catches_its_violation(crystals, check, f):
    structures = [c for c in crystals if len({x.specie for x in c}) > 1] or crystals
    with pytest.raises(AssertionError, match=check):
        assert_equivariant(f, structures, rank=0, checks=(check,))


def test_pseudo_vector_needs_pseudo_flag(crystals):
    # a x b (Å²): rotates with R and keeps its sign under inversion, an axial (pseudo) vector.
    def axial(structures):
        return np.stack([np.cross(s.lattice.matrix[0], s.lattice.matrix[1]) for s in structures])

    checks = ("rotation", "improper")
    assert max(assert_equivariant(axial, crystals, 1, checks=checks, pseudo=True).values()) < 1e-12
    with pytest.raises(AssertionError, match="improper"):
        assert_equivariant(axial, crystals, 1, checks=checks)


def test_bad_predictions_are_reported(crystals):
    with pytest.raises(ValueError, match="shape"):
        assert_equivariant(lambda ss: np.zeros((len(ss), 3)), crystals, rank=0)
    with pytest.raises(ValueError, match="vacuous"):
        assert_equivariant(lambda ss: np.zeros(len(ss)), crystals, rank=0)
    with pytest.raises(AssertionError, match="non-finite"):
        assert_equivariant(lambda ss: np.full(len(ss), np.nan), crystals, rank=0)


# ------------------------------------------------------------------------------------ models
def _small_cgcnn():
    from zoo.models import make_config

    return make_config("cgcnn", atom_fea_len=16, h_fea_len=24, n_conv=2)


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_cgcnn_is_invariant_float64(crystals, backend):
    predict = predictor("cgcnn", backend, _small_cgcnn(), dtype="float64")
    errors = assert_equivariant(predict, crystals, rank=0, n_trials=1, rtol=1e-10)
    assert max(errors.values()) < 1e-10


def test_cgcnn_backend_parity_float64_and_float32(crystals):
    config = _small_cgcnn()
    errors = assert_backend_parity("cgcnn", config, crystals, "float64", train=True, grads=True)
    assert set(errors) == {"output", "grad", "buffers"} and max(errors.values()) < 1e-9
    assert_backend_parity("cgcnn", config, crystals, "float32", grads=True)


def test_float32_parity_comes_with_each_backends_rounding_error(crystals):
    from zoo.testing import backend_parity_errors

    errors = backend_parity_errors("cgcnn", _small_cgcnn(), crystals, "float32", grads=True, rounding=True)
    # Rounding, not zero (the float64 reference is a different computation) and not large.
    for key in ("grad_rounding_torch", "grad_rounding_jax"):
        assert 1e-9 < errors[key] < 1e-3, errors
    # The reference is the float64 gradient of the same weights: in float64 nothing is added.
    assert "grad_rounding_torch" not in backend_parity_errors("cgcnn", _small_cgcnn(), crystals, "float64", grads=True, rounding=True)


def test_backend_parity_catches_a_bad_converter(crystals, monkeypatch):
    import zoo.testing

    original = zoo.testing.flax_from_torch

    def off_by_a_little(state, like, what="weights"):
        state = dict(state)
        state["conv_to_fc.bias"] = np.asarray(state["conv_to_fc.bias"]) + 1e-3
        return original(state, like=like, what=what)

    monkeypatch.setattr(zoo.testing, "flax_from_torch", off_by_a_little)
    with pytest.raises(AssertionError, match="output relative error"):
        assert_backend_parity("cgcnn", _small_cgcnn(), crystals, "float64")


def test_predictor_loads_the_same_weights_in_both_backends(crystals, tmp_path):
    import torch

    from zoo.core import weights
    from zoo.models import build, config_to_dict

    config = _small_cgcnn()
    torch.manual_seed(42)
    state = {k: v.detach().numpy() for k, v in build("cgcnn", "torch", config).state_dict().items()}
    weights.save(tmp_path / "w", state, {"model": "cgcnn", "config": config_to_dict(config)})
    via_dict = predictor("cgcnn", "torch", config, weights=state)(crystals)
    via_file = predictor("cgcnn", "jax", config_to_dict(config), weights=tmp_path / "w.safetensors")(crystals)
    np.testing.assert_allclose(via_file, via_dict, rtol=1e-10)
    other_seed = predictor("cgcnn", "torch", config, seed=1)(crystals)
    assert not np.allclose(other_seed, via_dict)


# ------------------------------------------------------------------------------------ tfn
@pytest.fixture(scope="module")
def tfn_case():
    from zoo.models import make_config
    from zoo.tasks.spec import TargetSpec

    config = make_config("tfn", hidden_irreps="8x0e+4x0o+4x1e+4x1o+2x2e+2x2o", n_layers=2)
    config = config.with_target(TargetSpec("dielectric", "tensor", rank=2, formula="ij=ji"))
    structures = random_crystals(3, seed=5, max_atoms=6, graph_specs=[config.graph_spec()])
    return config, structures


# JAX (30 s) is slow-marked: tests/models/tfn checks the JAX TFN's rank-2 equivariance in float64 by default.
@pytest.mark.parametrize("backend", ["torch", pytest.param("jax", marks=pytest.mark.slow)])
def test_tfn_rank2_is_equivariant_float64(tfn_case, backend):
    config, structures = tfn_case
    predict = predictor("tfn", backend, config, dtype="float64")
    assert_equivariant(predict, structures, rank=2, n_trials=1, rtol=1e-10)
    # Not vacuous: the prediction really rotates (it is not isotropic), so invariance would fail.
    R = random_rotation(9)
    base = predict(structures)
    moved = predict([transform_structure(s, R=R) for s in structures])
    assert relative_error(moved, base) > 1e-3


def test_tfn_backend_parity_float64(tfn_case):
    config, structures = tfn_case
    errors = assert_backend_parity("tfn", config, structures, "float64", grads=True)
    assert max(errors.values()) < 1e-9
