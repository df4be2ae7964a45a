"""Point-group network (pgnet): exact equivariance under every operation of O_h and D_6h in the standard
frame, the whole pipeline under random O(3) elements on all 7 crystal systems, Neumann's principle for
tensors of rank 2-4 (also for point groups that are proper subgroups of the holohedry), per-site tensors
obeying their site symmetry, torch <-> JAX parity on the same weights, and the weight layout."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("jax")

from pymatgen.core import Lattice, Structure  # noqa: E402

from zoo.backend.torch import to_torch  # noqa: E402
from zoo.graphs import GraphSpec, build_graph, collate  # noqa: E402
from zoo.models import build, config_from_dict, config_to_dict  # noqa: E402
from zoo.models.pgnet import PGNetConfig, n_parameters, state_layout  # noqa: E402
from zoo.models.pgnet import plan as P  # noqa: E402
from zoo.symmetry import cartesian_point_group, point_group, rotate_tensor, symmetry_violation  # noqa: E402
from zoo.reports.pgnet_symmetry import SYSTEMS, one_per_system  # noqa: E402
from zoo.tasks.spec import TargetSpec  # noqa: E402
from zoo.testing import (  # noqa: E402
    assert_backend_parity,
    assert_equivariant,
    predictor,
    random_crystals,
    random_rotation,
    transform_structure,
)

TARGETS = {
    "scalar": TargetSpec("e", kind="scalar"),
    "dielectric": TargetSpec("eps", kind="tensor", rank=2, formula="ij=ji"),
    "piezo": TargetSpec("e", kind="tensor", rank=3, formula="ijk=ikj"),
    "elastic": TargetSpec("C", kind="tensor", rank=4, formula="ijkl=jikl=klij"),
}
# Small widths: every test runs in seconds; the maths does not depend on them.
SMALL = dict(
    hidden_oh="8xA1g + 2xA2g + 2xEg + 2xT1g + 2xT2g + 2xA1u + 2xA2u + 2xEu + 2xT1u + 2xT2u",
    hidden_d6h="8xA1g + 2xA2g + 2xB1g + 2xB2g + 2xE1g + 2xE2g + 2xA1u + 2xA2u + 2xB1u + 2xB2u + 2xE1u + 2xE2u",
    embed_dim=8, radial_hidden=16, n_layers=2, radius=5.0, avg_num_neighbors=12.0,
)


def config_for(target: str, **kw) -> PGNetConfig:
    return PGNetConfig(**{**SMALL, **kw}).with_target(TARGETS[target])


@pytest.fixture(scope="module")
def by_system():
    """One generated crystal per crystal system (exact space-group symmetry), graphs building at 5 Å:
    the crystals the pgnet_symmetry report measures."""
    out = one_per_system(config_for("scalar").graph_spec())
    assert set(out) == set(SYSTEMS)
    return out


def torch_model(config, seed: int = 0):
    torch.manual_seed(seed)
    return build("pgnet", "torch", config).double()


def _batch(graphs, holohedry: int | None = None):
    """A float64 torch batch; ``holohedry`` set: the graphs are taken as already in that frame (identity
    rotation), which lets a test apply the holohedry's operations to the network itself."""
    b = collate(graphs)
    arrays = dict(b)
    if holohedry is not None:
        G = len(graphs)
        arrays["frame_rotation"] = np.broadcast_to(np.eye(3), (G, 3, 3)).copy()
        arrays["frame_holohedry"] = np.full(G, holohedry, dtype=np.int64)
    return to_torch(arrays, dtype=torch.float64)


# ------------------------------------------------------------------------------------- the plan
def test_readout_takes_exactly_the_irreps_of_the_cartesian_target():
    """A symmetric rank-2 tensor under m-3m is A1g + Eg + T2g; a piezoelectric one is 2 T1u (the two
    vectors) + T1u + T2u (3o) + Eu + T2u (2o)... and the map back to O(3) irreps is orthogonal."""
    out = P.output_map("m-3m", "ij=ji")
    assert [(m, lab) for m, lab, _ in out.chunks] == [(1, "A1g"), (1, "Eg"), (1, "T2g")]
    assert np.allclose(out.matrix @ out.matrix.T, np.eye(6), atol=1e-14)
    piezo = P.output_map("m-3m", "ijk=ikj")
    assert sum(m * d for m, _, d in piezo.chunks) == 18 and {lab for _, lab, _ in piezo.chunks} <= {"A2u", "Eu", "T1u", "T2u"}
    hexa = P.output_map("6/mmm", "ijkl=jikl=klij")
    assert sum(m * d for m, _, d in hexa.chunks) == 21 and np.allclose(hexa.matrix.T @ hexa.matrix, np.eye(21), atol=1e-13)


def test_filters_are_the_subduced_harmonics():
    fs = P.filters("m-3m", 2)
    assert [(f.l, f.label) for f in fs] == [(0, "A1g"), (1, "T1u"), (2, "Eg"), (2, "T2g")]
    G = point_group("m-3m")
    for f in fs:  # D^l(g) B = B Γ(g) for every g
        D = G.wigner_d(f.l, (-1) ** f.l)
        assert np.abs(D @ f.B - f.B @ G.matrices(f.label)).max() < 1e-12


def test_config_round_trip_weight_layout_and_errors():
    cfg = config_for("elastic")
    assert config_from_dict("pgnet", config_to_dict(cfg)) == cfg
    model = torch_model(cfg)
    sd = model.state_dict()
    layout = state_layout(cfg)
    assert list(sd) == list(layout) and all(tuple(sd[k].shape) == s for k, s in layout.items())
    assert sum(v.numel() for v in sd.values()) == n_parameters(cfg)
    assert {k.split(".")[0] for k in layout} == {"embedding", "oh", "d6h"}
    with pytest.raises(ValueError, match="not an irrep of m-3m"):
        PGNetConfig(hidden_oh="8xA1g + 2xE1g")
    with pytest.raises(ValueError, match="A1g"):
        PGNetConfig(hidden_oh="4xT1u")
    with pytest.raises(ValueError, match="read-out cannot produce"):  # only A1g features and Y(l <= 1): no Eg, T2g
        PGNetConfig(**{**SMALL, "hidden_oh": "8xA1g"}, lmax=1, readout_lmax=1).with_target(TARGETS["dielectric"])


# ---------------------------------------------------------------------------- equivariance
@pytest.mark.parametrize("group,target,norm", [("m-3m", "dielectric", "mean"), ("m-3m", "piezo", "mean"), ("6/mmm", "elastic", "mean"),
                                               ("6/mmm", "dielectric", "mean"), ("m-3m", "piezo", "degree"),
                                               ("6/mmm", "dielectric", "neighbors")])
def test_network_is_equivariant_under_every_operation_of_its_holohedry(by_system, group, target, norm):
    """f(hS) = h·f(S) for all 48 (24) operations h of the holohedry, applied to a crystal that has none of
    them (triclinic), the network taken in the holohedry's frame directly (no standardisation); also with
    the per-atom neighbour-count normalisations of the messages."""
    _assert_holohedry_equivariant(by_system, group, config_for(target, message_norm=norm))


def test_density_input_keeps_every_operation_of_the_holohedry(by_system):
    """density_basis adds the crystal's volume per atom (an invariant, A1g) to the species input: still
    f(hS) = h·f(S) for all 48 operations of m-3m, float64."""
    _assert_holohedry_equivariant(by_system, "m-3m", config_for("dielectric", message_norm="neighbors", density_basis=8))


def test_density_input_parameters_and_backends(by_system):
    """density.weight (density_basis x embed_dim) sits after the embedding in the weight format, changes the
    prediction, and torch and JAX agree on the same weights (float64)."""
    cfg = config_for("dielectric", message_norm="neighbors", density_basis=6)
    layout = state_layout(cfg)
    assert list(layout)[:2] == ["embedding.weight", "density.weight"] and layout["density.weight"] == (6, cfg.embed_dim)
    assert "density.weight" not in state_layout(config_for("dielectric"))
    with pytest.raises(ValueError, match="density_basis"):
        PGNetConfig(density_basis=-2)
    model = torch_model(cfg)
    batch = _batch([build_graph(by_system["triclinic"], GraphSpec(rule="radius", radius=cfg.radius))], holohedry=0)
    with torch.no_grad():
        out = model(batch).numpy()
        model.density.weight.zero_()
        out_zero = model(batch).numpy()
    assert np.abs(out - out_zero).max() > 1e-3 * np.abs(out).max()
    assert_backend_parity("pgnet", cfg, [by_system[k] for k in SYSTEMS], "float64")


def _assert_holohedry_equivariant(by_system, group, cfg) -> None:
    model = torch_model(cfg)
    s = by_system["triclinic"]
    G = point_group(group)
    spec = GraphSpec(rule="radius", radius=cfg.radius)
    graphs = [build_graph(transform_structure(s, R=h), spec) for h in G.operations]
    h_index = 0 if group == "m-3m" else 1
    with torch.no_grad():
        out = model(_batch(graphs, holohedry=h_index)).numpy()
    base = out[0]  # the identity is the first operation
    assert np.abs(base).max() > 1e-3
    err = max(np.abs(out[k] - rotate_tensor(base, h)).max() for k, h in enumerate(G.operations)) / np.abs(base).max()
    assert err <= 1e-10, err
    # the network is not O(3)-equivariant by itself: a generic rotation is not one of its operations
    R = random_rotation(0)
    with torch.no_grad():
        moved = model(_batch([build_graph(transform_structure(s, R=R), spec)], holohedry=h_index)).numpy()[0]
    assert np.abs(moved - rotate_tensor(base, R)).max() / np.abs(base).max() > 1e-3


def test_neighbor_count_normalisation_is_the_mean_over_each_atoms_real_neighbours():
    """``message_norm="neighbors"`` divides each atom's summed messages by its own count of incoming edges:
    on fcc copper at 3 Å every atom has exactly 12, so it equals the fixed divisor 12 ("mean",
    avg_num_neighbors=12); in a crystal whose atoms have different counts the two differ, and "degree"
    (Y^l >= 1 by the square root of the count) differs from both."""
    fcc = Structure(Lattice.cubic(3.61), ["Cu"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    mixed = Structure(Lattice.cubic(4.2), ["Na", "Cl", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.2, 0.1]])

    def predict(structure, **kw):
        cfg = config_for("dielectric", radius=3.0, **kw)
        return predictor("pgnet", "torch", cfg, dtype="float64")([structure])[0]

    counts = np.bincount(build_graph(fcc, GraphSpec(rule="radius", radius=3.0)).receivers)
    assert set(counts) == {12}
    np.testing.assert_allclose(predict(fcc, message_norm="neighbors", avg_num_neighbors=3.0),
                               predict(fcc, message_norm="mean", avg_num_neighbors=12.0), rtol=1e-12, atol=1e-14)
    a, b, c = (predict(mixed, message_norm=n, avg_num_neighbors=12.0) for n in ("neighbors", "mean", "degree"))
    assert len(set(np.bincount(build_graph(mixed, GraphSpec(rule="radius", radius=3.0)).receivers))) > 1
    assert np.abs(a - b).max() > 1e-6 * np.abs(b).max() and np.abs(a - c).max() > 1e-6 * np.abs(a).max()


@pytest.mark.parametrize("target", ["dielectric", "piezo", "elastic"])
def test_pipeline_is_o3_equivariant_and_invariant_on_all_systems(by_system, target):
    """The whole pipeline (standard frame, network, back to the crystal's frame) under random proper and
    improper rotations, translations, permutations and supercells of crystals of all 7 systems."""
    cfg = config_for(target)
    predict = predictor("pgnet", "torch", cfg, dtype="float64")
    structures = [by_system[k] for k in SYSTEMS]
    errors = assert_equivariant(predict, structures, rank=TARGETS[target].rank, rtol=1e-8)
    assert max(errors.values()) <= 1e-8


@pytest.mark.parametrize("target", ["dielectric", "piezo", "elastic"])
@pytest.mark.parametrize("dtype,bound", [("float64", 1e-8), ("float32", 1e-5)])
def test_neumann_every_prediction_keeps_its_crystals_point_group(target, dtype, bound):
    """||T - Sym_G T|| <= bound · scale for each crystal's own point group G (from spglib in the crystal's
    frame), including groups that are proper subgroups of the holohedry (most of them). The scale is the
    largest ||T|| of the batch: a tensor the group forces to zero (the piezoelectric tensor of a
    centrosymmetric crystal) is round-off, whose violation relative to itself means nothing."""
    cfg = config_for(target)
    structures = random_crystals(12, seed=21, max_atoms=8, graph_specs=(cfg.graph_spec(),))
    out = predictor("pgnet", "torch", cfg, dtype=dtype)(structures)
    scale = max(np.linalg.norm(T) for T in out)
    assert scale > 0
    orders = set()
    for s, T in zip(structures, out):
        ops = cartesian_point_group(s)
        orders.add(len(ops))
        viol = symmetry_violation(T, ops) * np.linalg.norm(T) / scale
        assert viol <= bound, (s.composition.reduced_formula, len(ops), viol)
    assert len(orders) >= 4  # several point groups, not just the holohedries


def test_distortion_below_symprec_is_idealised_and_above_it_is_seen():
    """A cubic cell stretched along z by 2e-4 Å (< symprec 1e-3 Å) is idealised to a cubic cell (spglib
    averages the lattice): its prediction is exactly isotropic, like the cubic crystal's, and close to it;
    stretched by 0.05 Å it is tetragonal and so is its prediction. (The jump at symprec is the price of
    exact symmetry: pick symprec to match the data's noise.)"""
    cfg = config_for("dielectric")
    predict = predictor("pgnet", "torch", cfg, dtype="float64")
    cubic = Structure(Lattice.cubic(4.0), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    slightly = Structure(Lattice.tetragonal(4.0, 4.0002), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    clearly = Structure(Lattice.tetragonal(4.0, 4.05), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    a, b, c = predict([cubic, slightly, clearly])
    assert np.abs(a - a[0, 0] * np.eye(3)).max() <= 1e-12 * abs(a[0, 0])  # cubic: isotropic
    assert np.abs(b - b[0, 0] * np.eye(3)).max() <= 1e-12 * abs(b[0, 0])  # idealised: exactly isotropic
    assert abs(b[0, 0] - a[0, 0]) <= 1e-2 * abs(a[0, 0])
    assert abs(c[2, 2] - c[0, 0]) > 1e-6 * abs(c[0, 0])  # tetragonal: ε_zz ≠ ε_xx


# ----------------------------------------------------------------------------------- site head
def _site_ops(structure, symprec=1e-5):
    """Cartesian site-symmetry operations of every site of a structure in its own frame (spglib)."""
    import spglib

    cell = (structure.lattice.matrix, structure.frac_coords, structure.atomic_numbers)
    ds = spglib.get_symmetry_dataset(cell, symprec=symprec)
    L = np.asarray(structure.lattice.matrix)
    out = []
    for x in structure.frac_coords:
        ops = []
        for W, w in zip(ds.rotations, ds.translations):
            d = (W @ x + w) - x
            if np.abs(d - np.round(d)).max() < 1e-5:
                R = L.T @ W @ np.linalg.inv(L.T)
                if not any(np.allclose(R, Q, atol=1e-8) for Q in ops):
                    ops.append(R)
        out.append(np.array(ops))
    return out


def test_site_tensors_obey_each_sites_site_symmetry():
    """Per-site symmetric rank-2 tensors on crystals with known Wyckoff positions: rutile TiO2 (P4_2/mnm:
    Ti 2a mmm., O 4f m.2m) and wurtzite ZnO (P6_3mc: Zn, O 2b 3m.): T_site = g·T_site for every g of the
    site's group; the head is not trivial (the O tensor of rutile is not uniaxial about z)."""
    cfg = PGNetConfig(**SMALL, site_formula="ij=ji")
    model = torch_model(cfg)
    rutile = Structure(Lattice.tetragonal(4.594, 2.959), ["Ti", "Ti", "O", "O", "O", "O"],
                       [[0, 0, 0], [0.5, 0.5, 0.5], [0.305, 0.305, 0], [0.695, 0.695, 0], [0.195, 0.805, 0.5], [0.805, 0.195, 0.5]])
    wurtzite = Structure(Lattice.hexagonal(3.25, 5.21), ["Zn", "Zn", "O", "O"],
                         [[1 / 3, 2 / 3, 0], [2 / 3, 1 / 3, 0.5], [1 / 3, 2 / 3, 0.382], [2 / 3, 1 / 3, 0.882]])
    for s, expected_orders in ((rutile, {8, 4}), (wurtzite, {6})):
        g = build_graph(s, cfg.graph_spec())
        std = Structure(Lattice(g.lattice), [int(z) for z in g.numbers], g.positions, coords_are_cartesian=True)
        with torch.no_grad():
            T = model(_batch([g]), site=True).numpy()
        ops = _site_ops(std)
        assert {len(o) for o in ops} == expected_orders
        for t, site_ops in zip(T, ops):
            assert np.abs(t).max() > 1e-6
            for R in site_ops:
                assert np.abs(rotate_tensor(t, R) - t).max() <= 1e-10 * np.abs(t).max()


# --------------------------------------------------------------------------------- backends
@pytest.mark.parametrize("target", ["scalar", "dielectric", "piezo"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_torch_and_jax_agree_on_the_same_weights(by_system, target, dtype):
    cfg = config_for(target)
    structures = [by_system[k] for k in SYSTEMS]
    assert_backend_parity("pgnet", cfg, structures, dtype)


def test_torch_and_jax_agree_with_per_atom_message_normalisation(by_system):
    cfg = config_for("dielectric", message_norm="degree")
    assert_backend_parity("pgnet", cfg, [by_system[k] for k in SYSTEMS], "float64")
