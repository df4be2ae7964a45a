"""Target standardisation (zoo.training.targets)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from zoo.tasks.spec import TargetSpec


def test_normalizer_scalar_round_trip():
    from zoo.training import TargetNormalizer

    y = np.array([1.0, 2.0, 4.0, 9.0])
    n = TargetNormalizer.fit(y, TargetSpec("y"))
    z = n.forward(y)
    assert abs(z.mean()) < 1e-12 and abs(z.std() - 1) < 1e-12
    np.testing.assert_allclose(n.inverse(z), y, rtol=0, atol=1e-12)
    assert TargetNormalizer.from_dict(json.loads(json.dumps(n.to_dict()))).to_dict() == n.to_dict()


def test_normalizer_tensor_commutes_with_rotations():
    """Scale-only and O(3)-invariant: normalising a rotated tensor = rotating the normalised one."""
    from scipy.spatial.transform import Rotation

    from zoo.symmetry import rotate_tensor
    from zoo.training import TargetNormalizer

    rng = np.random.default_rng(1)
    T = rng.normal(size=(20, 3, 3))
    T = T + T.transpose(0, 2, 1) + 5 * np.eye(3)
    spec = TargetSpec("eps", kind="tensor", rank=2, formula="ij=ji")
    n = TargetNormalizer.fit(T, spec)
    R = Rotation.random(random_state=3).as_matrix() * -1.0  # an improper rotation (O(3), det -1)
    TR = np.stack([rotate_tensor(t, R) for t in T])
    n_rot = TargetNormalizer.fit(TR, spec)
    assert n_rot.scale == pytest.approx(n.scale, rel=1e-12)
    np.testing.assert_allclose(n_rot.forward(TR), np.stack([rotate_tensor(z, R) for z in n.forward(T)]), atol=1e-12)
    assert np.all(n.mean == 0)
    # The scale is the RMS component: standardised tensors have unit mean square component.
    assert np.mean(n.forward(T) ** 2) == pytest.approx(1.0, rel=1e-12)



def _dielectric_like(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    T = rng.normal(size=(n, 3, 3))
    return T + T.transpose(0, 2, 1) + 9.5 * np.eye(3)  # mean isotropic part ~9.5, like embedded_dielectric


def test_isotropic_centre_is_the_trace_of_the_training_mean_and_round_trips():
    from zoo.training import TargetNormalizer

    T = _dielectric_like(30, 2)
    spec = TargetSpec("eps", kind="tensor", rank=2, formula="ij=ji")
    n = TargetNormalizer.fit(T, spec, "isotropic")
    np.testing.assert_allclose(n.mean, np.trace(T.mean(0)) / 3 * np.eye(3), rtol=1e-13)
    z = n.forward(T)
    assert np.mean(z**2) == pytest.approx(1.0, rel=1e-12)  # unit rms component after centring
    assert abs(np.mean(np.trace(z, axis1=1, axis2=2))) < 1e-12  # the isotropic mean is gone
    assert n.scale < TargetNormalizer.fit(T, spec).scale / 2  # the uncentred scale is dominated by 9.5 I
    np.testing.assert_allclose(n.inverse(z), T, rtol=0, atol=1e-12)
    # The run folder's record (config.json "normalizer") restores the very same normaliser.
    back = TargetNormalizer.from_dict(json.loads(json.dumps(n.to_dict())))
    assert back.to_dict() == n.to_dict() and np.array_equal(back.inverse(z), n.inverse(z))


def test_isotropic_centre_commutes_with_rotations_and_reflections():
    """Only an O(3)-invariant centre keeps the standardised target equivariant: centring a rotated
    training set gives the rotated centred tensors (improper rotation, det -1)."""
    from scipy.spatial.transform import Rotation

    from zoo.symmetry import rotate_tensor
    from zoo.training import TargetNormalizer

    T = _dielectric_like(20, 3)
    spec = TargetSpec("eps", kind="tensor", rank=2, formula="ij=ji")
    R = Rotation.random(random_state=5).as_matrix() * -1.0
    TR = np.stack([rotate_tensor(t, R) for t in T])
    n, n_rot = TargetNormalizer.fit(T, spec, "isotropic"), TargetNormalizer.fit(TR, spec, "isotropic")
    np.testing.assert_allclose(n_rot.mean, n.mean, atol=1e-12)
    np.testing.assert_allclose(n_rot.forward(TR), np.stack([rotate_tensor(z, R) for z in n.forward(T)]), atol=1e-12)
    # the full mean tensor would not: it is anisotropic for this set, so it is not what is subtracted
    assert np.abs(T.mean(0) - n.mean).max() > 0.1


def test_isotropic_centre_of_odd_and_fourth_rank_tensors():
    from zoo.tensors import isotropic_part
    from zoo.training import TargetNormalizer

    rng = np.random.default_rng(4)
    e = rng.normal(size=(10, 3, 3, 3)) + 1.0
    e = (e + e.transpose(0, 1, 3, 2)) / 2
    piezo = TargetNormalizer.fit(e, TargetSpec("e", kind="tensor", rank=3, formula="ijk=ikj"), "isotropic")
    assert np.abs(piezo.mean).max() < 1e-12  # no invariant in an odd-rank (polar) tensor
    C = rng.normal(size=(10, 3, 3, 3, 3))
    C = sum(C.transpose(0, *p) for p in [(1, 2, 3, 4), (2, 1, 3, 4), (3, 4, 1, 2), (4, 3, 2, 1)])
    formula = "ijkl=jikl=klij"
    el = TargetNormalizer.fit(C, TargetSpec("C", kind="tensor", rank=4, formula=formula), "isotropic")
    np.testing.assert_allclose(el.mean, isotropic_part(C.mean(0), formula), atol=1e-12)
    assert np.abs(el.mean).max() > 0.1


def test_old_runs_keep_their_uncentred_normaliser():
    """A config.json written before tensor_center existed has no such field and a zero mean: it loads as
    "none", and its normaliser (stored in full) undoes exactly what it did."""
    from zoo.training import TargetNormalizer, TrainConfig
    from zoo.training.config import UsageError

    old = TrainConfig().to_dict()
    del old["tensor_center"]
    assert TrainConfig.from_dict(old).tensor_center == "none"
    stored = {"kind": "tensor", "mean": np.zeros((3, 3)).tolist(), "scale": 12.5}
    n = TargetNormalizer.from_dict(stored)
    z = np.arange(9.0).reshape(1, 3, 3)
    np.testing.assert_array_equal(n.inverse(z), z * 12.5)
    with pytest.raises(UsageError, match="tensor_center"):
        TrainConfig(tensor_center="full")
    with pytest.raises(ValueError, match="tensor_center"):
        TargetNormalizer.fit(_dielectric_like(3, 0), TargetSpec("eps", kind="tensor", rank=2, formula="ij=ji"), "mean")


def test_class_scores_use_matbench_threshold():
    """One threshold everywhere: a probability of exactly 0.5 is the negative class (matbench: p > 0.5),
    so a run folder's accuracy and a recorded matbench score cannot disagree."""
    from zoo.tasks.metrics import classification_metrics
    from zoo.training import compute_metrics

    target = TargetSpec("c", kind="class")
    y, p = np.array([0.0, 1.0, 0.0, 1.0]), np.array([0.5, 0.9, 0.2, 0.7])
    scores = compute_metrics(target, y, p)
    assert scores["accuracy"] == 1.0
    assert scores == classification_metrics(y, p)
    assert compute_metrics(target, y[:0], p[:0]) == {"n": 0}


def test_scores_are_the_tasks_own():
    from zoo.tasks.metrics import scalar_metrics, tensor_metrics
    from zoo.training import compute_metrics

    rng = np.random.default_rng(0)
    y, p = rng.normal(size=12), rng.normal(size=12)
    assert compute_metrics(TargetSpec("y"), y, p) == scalar_metrics(y, p)
    T, P = rng.normal(size=(5, 3, 3)), rng.normal(size=(5, 3, 3))
    spec = TargetSpec("eps", kind="tensor", rank=2, formula="ij=ji")
    assert compute_metrics(spec, T, P) == tensor_metrics(T, P, formula="ij=ji")


def test_loss_choice():
    from zoo.training import TrainConfig
    from zoo.training.targets import resolve_loss

    assert resolve_loss(TrainConfig(), TargetSpec("y")) == "mse"
    assert resolve_loss(TrainConfig(), TargetSpec("c", kind="class")) == "bce"
    assert resolve_loss(TrainConfig(loss="l1"), TargetSpec("y")) == "l1"
    with pytest.raises(ValueError, match="does not fit"):
        resolve_loss(TrainConfig(loss="bce"), TargetSpec("y"))


def test_log_transform_round_trips_and_commutes_with_rotations():
    """target_transform="log": the model sees (log ε - centre) / scale, predictions come back through exp;
    both steps commute with O(3) (improper rotation here), so the model stays equivariant."""
    from scipy.spatial.transform import Rotation

    from zoo.symmetry import rotate_tensor
    from zoo.tensors import spd_log
    from zoo.training import TargetNormalizer

    T = _dielectric_like(25, 6)
    spec = TargetSpec("eps", kind="tensor", rank=2, formula="ij=ji")
    n = TargetNormalizer.fit(T, spec, "isotropic", "log")
    L = spd_log(T)
    np.testing.assert_allclose(n.mean, np.trace(L.mean(0)) / 3 * np.eye(3), rtol=1e-13)
    z = n.forward(T)
    assert np.mean(z**2) == pytest.approx(1.0, rel=1e-12)
    np.testing.assert_allclose(n.inverse(z), T, rtol=1e-12, atol=1e-12)
    R = Rotation.random(random_state=7).as_matrix() * -1.0
    TR = np.stack([rotate_tensor(t, R) for t in T])
    n_rot = TargetNormalizer.fit(TR, spec, "isotropic", "log")
    np.testing.assert_allclose(n_rot.forward(TR), np.stack([rotate_tensor(t, R) for t in z]), atol=1e-12)
    np.testing.assert_allclose(n.inverse(np.stack([rotate_tensor(t, R) for t in z])), TR, rtol=1e-12, atol=1e-12)
    # every prediction is positive definite, whatever the model outputs
    assert np.linalg.eigvalsh(n.inverse(np.random.default_rng(0).normal(size=(50, 3, 3)) * 3)).min() > 0
    # the run folder's record restores it; a record without "transform" is the identity (older runs)
    d = json.loads(json.dumps(n.to_dict()))
    assert d["transform"] == "log"
    back = TargetNormalizer.from_dict(d)
    np.testing.assert_array_equal(back.inverse(z), n.inverse(z))
    assert "transform" not in TargetNormalizer.fit(T, spec, "isotropic").to_dict()


def test_log_transform_refuses_what_it_cannot_take():
    from zoo.training import TargetNormalizer, TrainConfig
    from zoo.training.config import UsageError

    spec = TargetSpec("eps", kind="tensor", rank=2, formula="ij=ji")
    T = _dielectric_like(4, 8)
    T[1] = -T[1]
    with pytest.raises(ValueError, match="'b'.*not positive definite"):
        TargetNormalizer.fit(T, spec, "isotropic", "log", ids=["a", "b", "c", "d"])
    with pytest.raises(ValueError, match="symmetric rank-2"):
        TargetNormalizer.fit(np.ones((3, 3, 3, 3)), TargetSpec("e", kind="tensor", rank=3, formula="ijk=ikj"), "none", "log")
    with pytest.raises(ValueError, match=r"'y' \(and 0 more\) is -1.0, not positive"):
        TargetNormalizer.fit(np.array([1.0, -1.0, 2.0]), TargetSpec("y"), "none", "log", ids=["x", "y", "z"])
    with pytest.raises(ValueError, match="transform"):
        TargetNormalizer.fit(np.array([1.0, 0.0]), TargetSpec("c", kind="class"), "none", "log")
    with pytest.raises(UsageError, match="target_transform"):
        TrainConfig(target_transform="sqrt")
    with pytest.raises(ValueError, match="transform"):
        TargetNormalizer.from_dict({"kind": "class", "mean": 0.0, "scale": 1.0, "transform": "log"})


def test_log_transform_of_a_positive_scalar():
    """A scalar target (e.g. the isotropic permittivity) standardised as ln y, predicted as exp: golden values."""
    from zoo.training import TargetNormalizer

    y = np.array([1.0, np.e, np.e**2, np.e**3])
    n = TargetNormalizer.fit(y, TargetSpec("eps_iso"), "none", "log")
    assert float(n.mean) == pytest.approx(1.5, abs=1e-15) and n.scale == pytest.approx(np.std([0, 1, 2, 3]), rel=1e-14)
    np.testing.assert_allclose(n.forward(y), (np.arange(4) - 1.5) / n.scale, atol=1e-14)
    np.testing.assert_allclose(n.inverse(n.forward(y)), y, rtol=1e-14)
    assert n.inverse(np.array([1e6]))[0] == pytest.approx(np.exp(50.0))  # finite, not inf
    back = TargetNormalizer.from_dict(json.loads(json.dumps(n.to_dict())))
    assert back.transform == "log" and back.to_dict() == n.to_dict()


def test_norm_log_transform_of_a_piezoelectric_like_target():
    """target_transform="norm_log" on a rank-3 target: fitted scale = median training norm, exact round trip,
    commutes with improper rotations, and the run folder's record restores it (scale included)."""
    from scipy.spatial.transform import Rotation

    from zoo.symmetry import rotate_tensor
    from zoo.tensors.norm_log import norm_log
    from zoo.training import TargetNormalizer

    rng = np.random.default_rng(5)
    T = rng.standard_normal((30, 3, 3, 3)) * np.exp(rng.normal(0, 1.5, (30, 1, 1, 1)))
    T = 0.5 * (T + T.transpose(0, 1, 3, 2))  # e_ijk = e_ikj
    spec = TargetSpec("e", kind="tensor", rank=3, formula="ijk=ikj")
    n = TargetNormalizer.fit(T, spec, "isotropic", "norm_log")
    s = float(np.median(np.linalg.norm(T.reshape(30, -1), axis=1)))
    assert n.transform_scale == pytest.approx(s, rel=1e-14)
    np.testing.assert_array_equal(n.mean, 0.0)  # an odd rank has no isotropic part
    z = n.forward(T)
    np.testing.assert_allclose(z * n.scale, norm_log(T, 3, s), rtol=1e-14)
    assert np.mean(z**2) == pytest.approx(1.0, rel=1e-12)
    np.testing.assert_allclose(n.inverse(z), T, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(n.inverse(z[0]), T[0], rtol=1e-11, atol=1e-13)  # one tensor without the batch axis
    R = -Rotation.random(random_state=2).as_matrix()
    zR = np.stack([rotate_tensor(t, R) for t in z])
    np.testing.assert_allclose(n.forward(np.stack([rotate_tensor(t, R) for t in T])), zR, atol=1e-12)
    np.testing.assert_allclose(n.inverse(zR), np.stack([rotate_tensor(t, R) for t in T]), rtol=1e-10, atol=1e-12)
    d = json.loads(json.dumps(n.to_dict()))
    assert d["transform"] == "norm_log" and d["transform_scale"] == pytest.approx(s)
    np.testing.assert_array_equal(TargetNormalizer.from_dict(d).inverse(z), n.inverse(z))
    assert "transform_scale" not in TargetNormalizer.fit(T, spec, "isotropic").to_dict()
    with pytest.raises(ValueError, match="transform_scale"):
        TargetNormalizer.from_dict({**d, "transform_scale": -1.0})


def test_norm_log_transform_of_a_signed_scalar():
    from zoo.training import TargetNormalizer

    y = np.array([-4.0, -1.0, 0.0, 1.0, 9.0])
    n = TargetNormalizer.fit(y, TargetSpec("y"), "none", "norm_log")
    assert n.transform_scale == pytest.approx(2.5)  # median of |y| over the non-zero ones: 1, 1, 4, 9
    f = np.sign(y) * 2.5 * np.log1p(np.abs(y) / 2.5)
    np.testing.assert_allclose(n.forward(y), (f - f.mean()) / f.std(), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(n.inverse(n.forward(y)), y, rtol=1e-13, atol=1e-13)


def test_clip_to_the_training_range_of_a_scalar():
    """clip_predictions="train_range": predictions outside [min, max] of the training targets come back to
    its ends (after the inverse transform, in the target's units); those inside are untouched."""
    from zoo.training import TargetNormalizer

    y = np.array([0.5, 2.0, 4.0, 70.0, 1600.0])
    n = TargetNormalizer.fit(y, TargetSpec("y"), "none", "norm_log", clip_predictions="train_range")
    assert n.clip == (0.5, 1600.0)
    np.testing.assert_allclose(n.inverse(n.forward(y)), y, rtol=1e-12)  # the training targets themselves: unchanged
    wild = n.forward(np.array([8066.0, -30.0, 100.0]))
    np.testing.assert_allclose(n.inverse(wild), [1600.0, 0.5, 100.0], rtol=1e-12)
    unclipped = TargetNormalizer.fit(y, TargetSpec("y"), "none", "norm_log")
    assert unclipped.clip is None and "clip" not in unclipped.to_dict()
    assert unclipped.inverse(wild)[0] == pytest.approx(8066.0, rel=1e-10)
    d = json.loads(json.dumps(n.to_dict()))
    assert d["clip"] == [0.5, 1600.0]
    np.testing.assert_array_equal(TargetNormalizer.from_dict(d).inverse(wild), n.inverse(wild))
    for bad in ([5.0, 1.0], [0.0], [0.0, float("nan")]):
        with pytest.raises(ValueError, match="clip"):
            TargetNormalizer.from_dict({**d, "clip": bad})
    with pytest.raises(ValueError, match="train_range"):
        TargetNormalizer.fit(y, TargetSpec("y"), clip_predictions="minmax")
    with pytest.raises(ValueError, match="class"):
        TargetNormalizer.fit(np.array([0.0, 1.0]), TargetSpec("c", kind="class"), clip_predictions="train_range")


def test_clip_of_a_tensor_caps_its_norm_and_commutes_with_improper_rotations():
    from scipy.spatial.transform import Rotation

    from zoo.symmetry import rotate_tensor
    from zoo.training import TargetNormalizer

    rng = np.random.default_rng(7)
    T = rng.standard_normal((25, 3, 3, 3))
    T = 0.5 * (T + T.transpose(0, 1, 3, 2))
    spec = TargetSpec("e", kind="tensor", rank=3, formula="ijk=ikj")
    n = TargetNormalizer.fit(T, spec, "isotropic", "norm_log", clip_predictions="train_range")
    top = float(np.max(np.linalg.norm(T.reshape(25, -1), axis=1)))
    assert n.clip == (0.0, pytest.approx(top, rel=1e-15))
    np.testing.assert_allclose(n.inverse(n.forward(T)), T, rtol=1e-11, atol=1e-13)
    big = 10 * T[:3]
    out = n.inverse(n.forward(big))
    np.testing.assert_allclose(np.linalg.norm(out.reshape(3, -1), axis=1), top, rtol=1e-12)  # capped at the largest
    np.testing.assert_allclose(out / top, big / np.linalg.norm(big.reshape(3, -1), axis=1)[:, None, None, None],
                               atol=1e-12)  # ... direction kept
    R = -Rotation.random(random_state=4).as_matrix()
    zR = np.stack([rotate_tensor(t, R) for t in n.forward(big)])
    np.testing.assert_allclose(n.inverse(zR), np.stack([rotate_tensor(t, R) for t in out]), atol=1e-10)
    with pytest.raises(ValueError, match="clip"):
        TargetNormalizer.from_dict({**n.to_dict(), "clip": [1.0, top]})  # a tensor's lower end is 0


def test_clausius_mossotti_transform_round_trips_and_refuses_other_targets():
    """target_transform="cm": the model sees ((ε - 1)(ε + 2)^-1 - centre) / scale, predictions come back
    through the inverse map; exact round trip, equivariant, restored from the run folder's record; only a
    permittivity-like (symmetric rank-2, positive-definite) target is taken."""
    from scipy.spatial.transform import Rotation

    from zoo.symmetry import rotate_tensor
    from zoo.tensors import cm_map
    from zoo.training import TargetNormalizer

    T = _dielectric_like(25, 9)
    spec = TargetSpec("eps", kind="tensor", rank=2, formula="ij=ji")
    n = TargetNormalizer.fit(T, spec, "isotropic", "cm")
    np.testing.assert_allclose(n.mean, np.trace(cm_map(T).mean(0)) / 3 * np.eye(3), rtol=1e-13)
    z = n.forward(T)
    np.testing.assert_allclose(n.inverse(z), T, rtol=1e-11, atol=1e-11)
    R = Rotation.random(random_state=3).as_matrix() * -1.0
    np.testing.assert_allclose(n.inverse(np.stack([rotate_tensor(t, R) for t in z])),
                               np.stack([rotate_tensor(t, R) for t in T]), rtol=1e-11, atol=1e-11)
    back = TargetNormalizer.from_dict(json.loads(json.dumps(n.to_dict())))
    assert back.transform == "cm"
    np.testing.assert_array_equal(back.inverse(z), n.inverse(z))
    with pytest.raises(ValueError, match="Clausius-Mossotti"):
        TargetNormalizer.fit(np.ones((3, 3, 3, 3)), TargetSpec("e", kind="tensor", rank=3, formula="ijk=ikj"), "none", "cm")
    with pytest.raises(ValueError, match="Clausius-Mossotti"):
        TargetNormalizer.fit(np.array([1.0, 2.0]), TargetSpec("y"), "none", "cm")


def test_tensor_metrics_from_precomputed_point_groups_equal_those_from_structures(capsys):
    """``finish_run`` computes each split's point groups once for the model's and the floor's scores: the
    scores are the same as from the structures, and ``progress=False`` prints no bar."""
    from pymatgen.core import Lattice, Structure

    from zoo.symmetry import point_group_ops
    from zoo.training.targets import compute_metrics

    cubic = Structure(Lattice.cubic(4.2), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    tetragonal = Structure(Lattice.tetragonal(3.0, 4.5), ["Ti", "O"], [[0, 0, 0], [0.5, 0.5, 0.3]])
    structures = [cubic, tetragonal]
    target = TargetSpec(name="eps", kind="tensor", rank=2, formula="ij=ji")
    rng = np.random.default_rng(0)
    y = rng.normal(size=(2, 3, 3))
    y = y + y.transpose(0, 2, 1)
    p = y + 0.1 * rng.normal(size=(2, 3, 3))
    ops = point_group_ops(structures, progress=False)
    assert compute_metrics(target, y, p, ops=ops, progress=False) == compute_metrics(target, y, p, structures=structures)
    assert "sym_violation_mean" in compute_metrics(target, y, p, ops=ops)
    assert "point groups" not in capsys.readouterr().err
