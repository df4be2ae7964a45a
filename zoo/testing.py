"""Public test utilities: random crystals, O(3) / lattice transformations, equivariance and backend-parity checks.

Like e3nn's ``assert_equivariant``, these are part of the API so that a user who adds a model family can
check it the way crystal-zoo checks its own::

    from zoo.testing import assert_backend_parity, assert_equivariant, predictor, random_crystals

    structures = random_crystals(4, seed=0, max_atoms=8)
    predict = predictor("tfn", "torch", config, dtype="float64")
    assert_equivariant(predict, structures, rank=2)              # f(g·S) = g·f(S) for g in O(3), ...
    assert_backend_parity("tfn", config, structures, "float64")  # torch and jax agree on the same weights

Everything works through the model registry (``zoo.models``), so any registered family is covered.
Conventions: a structure's lattice rows are the lattice vectors (Å); a rotation R acts on Cartesian
column vectors, r -> R r, so a row-vector array transforms as ``x @ R.T``; a rank-n Cartesian tensor
transforms as ``zoo.symmetry.rotate_tensor(T, R)`` (and a pseudo-tensor picks up an extra det R).
Errors are *relative to the scale of the whole batch of predictions* (max |Δ| / max |prediction|),
so that entries that vanish by symmetry (an off-diagonal element of a cubic crystal's dielectric
tensor) are compared against the tensor's magnitude, not against their own round-off.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zoo.backend.params import flax_from_torch, torch_from_flax
from zoo.core import weights as zw
from zoo.graphs import StructureError, build_graph, build_graphs, collate, pad_batch
from zoo.models import build, config_from_dict, make_config
from zoo.symmetry import rotate_tensor
from zoo.tasks.embedded.generator import generate_crystals

# torch, jax and their zoo.backend glue are imported inside the functions that use them, so that
# ``import zoo.testing`` works with only one backend installed; pymatgen (a second to import) where a
# structure is transformed.

__all__ = [
    "CHECKS",
    "assert_backend_parity",
    "assert_equivariant",
    "backend_parity_errors",
    "equivariance_errors",
    "predictor",
    "random_crystals",
    "random_rotation",
    "relative_error",
    "transform_structure",
]

# Transformations that assert_equivariant applies, in this order.
CHECKS = ("rotation", "improper", "translation", "permutation", "supercell")

# Default tolerances on relative errors: float64 checks are at round-off (a real bug gives >= 1e-4),
# float32 ones at a few hundred ulps of the accumulated sums.
DEFAULT_RTOL = {"float64": 1e-9, "float32": 1e-4}

# Supercells with 2 cells (det 2): diagonal and sheared, so a model that depends on the choice of cell
# (not only on the crystal) is caught. Rows are the new lattice vectors in units of the old ones.
_SUPERCELLS = (
    np.array([[2, 0, 0], [0, 1, 0], [0, 0, 1]]),
    np.array([[1, 0, 0], [0, 2, 0], [0, 0, 1]]),
    np.array([[1, 0, 0], [0, 1, 0], [0, 0, 2]]),
    np.array([[1, 1, 0], [0, 2, 0], [0, 0, 1]]),
    np.array([[1, 0, 0], [0, 1, 1], [0, 0, 2]]),
    np.array([[2, 0, 1], [0, 1, 0], [0, 0, 1]]),
)


# ================================================================================================
# crystals and transformations


def random_crystals(n: int, seed: int = 0, max_atoms: int = 12, graph_specs: Sequence = (), **kwargs: Any) -> list:
    """``n`` random symmetric crystals (pymatgen Structures, primitive cells) from the embedded generator.

    A thin wrapper over ``zoo.tasks.embedded.generator.generate_crystals`` (every crystal system; exact
    space-group symmetry, so symmetric ties in the neighbour shells are the rule, not the exception);
    deterministic in (n, seed, options); ``kwargs`` go to the generator (``elements``, ``packing``...).
    ``graph_specs``: keep only crystals whose graph builds under each of these ``GraphSpec``s (a sparse
    crystal can have an atom with no neighbour within a short radius), drawing more until there are ``n``.
    """
    kwargs.setdefault("progress", False)
    if not graph_specs:
        return [c.structure for c in generate_crystals(n, seed, max_atoms=max_atoms, **kwargs)]

    def usable(s) -> bool:
        try:
            for spec in graph_specs:
                build_graph(s, spec)
        except StructureError:
            return False
        return True

    # Crystal k does not depend on how many are drawn, so a longer draw extends a shorter one.
    total = n
    while True:
        out = [s for s in (c.structure for c in generate_crystals(total, seed, max_atoms=max_atoms, **kwargs)) if usable(s)]
        if len(out) >= n:
            return out[:n]
        if total > 20 * n + 100:
            raise ValueError(f"fewer than {n} of {total} generated crystals build graphs under {list(graph_specs)}; use a larger radius")
        total = 2 * total + 4


def _rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def random_rotation(rng: np.random.Generator | int | None = None, improper: bool | None = False) -> np.ndarray:
    """A Haar-random element of O(3) as a (3, 3) float64 orthogonal matrix.

    ``improper=False``: a rotation (det +1); ``True``: a rotation times the inversion (det -1);
    ``None``: either, with probability 1/2 (Haar on all of O(3)). ``rng``: a Generator or a seed.
    """
    rng = _rng(rng)
    # QR of a Gaussian matrix with the signs of R's diagonal moved into Q is Haar on O(3)
    # (Mezzadri, Notices AMS 54, 592 (2007)); multiplying by -I (central, det -1) maps a coset onto the other.
    q, r = np.linalg.qr(rng.standard_normal((3, 3)))
    q = q * np.sign(np.diag(r))
    want = rng.choice([-1.0, 1.0]) if improper is None else (-1.0 if improper else 1.0)
    if np.sign(np.linalg.det(q)) != want:
        q = -q
    return np.ascontiguousarray(q, dtype=np.float64)


def _supercell_matrix(supercell) -> np.ndarray:
    m = np.asarray(supercell)
    if m.ndim == 0:
        m = np.eye(3) * m
    elif m.shape == (3,):
        m = np.diag(m)
    if m.shape != (3, 3) or not np.allclose(m, np.round(m)) or round(abs(np.linalg.det(m))) < 1:
        raise ValueError(f"supercell must be a positive integer, 3 integers or a 3x3 integer matrix with det != 0, got {supercell!r}")
    return np.round(m).astype(int)


def transform_structure(structure, R: np.ndarray | None = None, t: np.ndarray | None = None,
                        perm: Sequence[int] | None = None, supercell=None):
    """The same crystal moved: a new pymatgen Structure (the input is not modified).

    Applied in this order:

    1. ``supercell``: int n (n x n x n), 3 ints (diagonal) or a 3x3 integer matrix whose rows are the new
       lattice vectors in units of the old ones (pymatgen's ``make_supercell``);
    2. ``perm``: site k of the result is site ``perm[k]`` (a permutation of all sites after step 1);
    3. ``R`` (3, 3) orthogonal: the lattice vectors *and* the Cartesian positions are rotated, r -> R r.
       An improper R makes the lattice left-handed; its vectors are then negated (a, b, c -> -a, -b, -c,
       fractional coordinates negated too), which changes the cell description but not one Cartesian
       position, so every result is a right-handed cell;
    4. ``t`` (3,) Å: every Cartesian position is shifted by t, then wrapped into the cell (so the periodic
       images a model uses change, while the crystal does not).

    Site properties (e.g. magnetic moments) follow their sites.
    """
    from pymatgen.core import Lattice, Structure

    s = structure
    if supercell is not None:
        s = s.make_supercell(_supercell_matrix(supercell), in_place=False)
    lattice = np.array(s.lattice.matrix, dtype=np.float64)
    frac = np.array(s.frac_coords, dtype=np.float64).reshape(-1, 3)
    species = [site.species for site in s]
    props = {k: list(v) for k, v in s.site_properties.items()}
    if perm is not None:
        perm = np.asarray(perm)
        if perm.shape != (len(s),) or not np.array_equal(np.sort(perm), np.arange(len(s))):
            raise ValueError(f"perm must be a permutation of range({len(s)}) (the sites after the supercell step), got {perm.tolist()}")
        frac = frac[perm]
        species = [species[k] for k in perm]
        props = {k: [v[p] for p in perm] for k, v in props.items()}
    if R is not None:
        R = np.asarray(R, dtype=np.float64)
        if R.shape != (3, 3) or not np.allclose(R @ R.T, np.eye(3), atol=1e-10):
            raise ValueError("R must be a (3, 3) orthogonal matrix (R @ R.T = I to 1e-10); see zoo.testing.random_rotation")
        lattice = lattice @ R.T  # rows are vectors: a -> R a; fractional coordinates are unchanged
        if np.linalg.det(lattice) < 0:
            lattice, frac = -lattice, -frac
    if t is not None:
        t = np.asarray(t, dtype=np.float64).reshape(3)
        frac = frac + np.linalg.solve(lattice.T, t)  # Cartesian r = L^T f, so Δf = L^{-T} t
        frac = frac - np.floor(frac)
    return Structure(Lattice(lattice), species, frac, site_properties=props or None)


# ================================================================================================
# equivariance


def relative_error(a, b, scale: float | None = None) -> float:
    """max |a - b| / scale, with scale = max |b| by default (0 when both are identically zero)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    diff = float(np.max(np.abs(a - b))) if a.size else 0.0
    scale = float(np.max(np.abs(b))) if scale is None and b.size else (scale or 0.0)
    if diff == 0.0:
        return 0.0
    return diff / scale if scale > 0 else float("inf")


def _predict_checked(predict, structures, rank: int, what: str) -> np.ndarray:
    out = np.asarray(predict(list(structures)), dtype=np.float64)
    want = (len(structures),) + (3,) * rank
    if out.shape != want:
        raise ValueError(
            f"predict returned shape {out.shape} for {len(structures)} {what} structures; a rank-{rank} "
            f"Cartesian tensor per structure has shape {want}: check `rank` or the model's output head"
        )
    if not np.all(np.isfinite(out)):
        bad = np.flatnonzero(~np.isfinite(out.reshape(len(structures), -1)).all(1))
        raise AssertionError(f"predict returned non-finite values for {what} structure(s) {bad.tolist()}")
    return out


def equivariance_errors(
    predict: Callable[[list], np.ndarray],
    structures: Sequence,
    rank: int,
    n_trials: int = 2,
    seed: int = 0,
    checks: Sequence[str] = CHECKS,
    pseudo: bool = False,
    extensive: bool = False,
) -> dict[str, float]:
    """Largest relative error of each check over ``n_trials`` random draws (see ``assert_equivariant``)."""
    unknown = set(checks) - set(CHECKS)
    if unknown:
        raise ValueError(f"unknown checks {sorted(unknown)}; choose from {CHECKS}")
    if not 0 <= rank <= 4:
        raise ValueError(f"rank must be 0..4, got {rank}")
    structures = list(structures)
    if not structures:
        raise ValueError("equivariance_errors needs at least one structure")
    rng = np.random.default_rng(seed)
    base = _predict_checked(predict, structures, rank, "original")
    scale = float(np.max(np.abs(base)))
    if scale == 0.0:
        raise ValueError(
            "every prediction is exactly zero, which any transformation leaves unchanged: the check would "
            "be vacuous. Use random (untrained) weights or more general structures"
        )
    errors: dict[str, float] = {}
    for _ in range(n_trials):
        for check in checks:
            expected = base
            if check in ("rotation", "improper"):
                R = random_rotation(rng, improper=(check == "improper"))
                moved = [transform_structure(s, R=R) for s in structures]
                # g·T: R on every index; a pseudo-tensor also changes sign under improper operations.
                expected = np.stack([rotate_tensor(y, R) for y in base]) * (np.linalg.det(R) if pseudo else 1.0)
            elif check == "translation":
                moved = [transform_structure(s, t=rng.uniform(-5.0, 5.0, 3)) for s in structures]  # Å
            elif check == "permutation":
                moved = [transform_structure(s, perm=rng.permutation(len(s))) for s in structures]
            else:  # supercell: 2 cells, so an intensive output is unchanged and an extensive one doubles
                m = _SUPERCELLS[int(rng.integers(len(_SUPERCELLS)))]
                moved = [transform_structure(s, supercell=m) for s in structures]
                if extensive:
                    expected = base * 2.0
            got = _predict_checked(predict, moved, rank, f"{check}-transformed")
            errors[check] = max(errors.get(check, 0.0), relative_error(got, expected, scale))
    return errors


def assert_equivariant(
    predict: Callable[[list], np.ndarray],
    structures: Sequence,
    rank: int,
    n_trials: int = 2,
    rtol: float = 1e-9,
    seed: int = 0,
    checks: Sequence[str] = CHECKS,
    pseudo: bool = False,
    extensive: bool = False,
) -> dict[str, float]:
    """Assert that ``predict`` commutes with the symmetries of a crystal's description.

    ``predict(list[Structure]) -> array (G, 3, ..., 3)`` (rank ``rank``; rank 0: shape (G,)). Checks, each
    drawn at random ``n_trials`` times (seeded by ``seed``):

    - ``rotation`` / ``improper``: f(g·S) = g·f(S) for a Haar-random g in SO(3) and in O(3) \\ SO(3),
      g·T = ``rotate_tensor(T, g)`` (times det g when ``pseudo``); rank 0 means invariance;
    - ``translation``: f(S + t) = f(S) for a random t in [-5, 5]³ Å (positions wrapped into the cell);
    - ``permutation``: f(P·S) = f(S) for a random order of the sites;
    - ``supercell``: f(2-cell supercell of S) = f(S) (intensive), or 2 f(S) when ``extensive``.

    Returns the largest relative error per check; raises AssertionError naming every failed check
    with its error and the tolerance ``rtol`` (errors relative to max |f(S)| over the batch). The
    default ``rtol`` suits float64 models (round-off ~1e-15; a broken symmetry gives >= 1e-6); a
    float32 model needs ~1e-4.
    """
    errors = equivariance_errors(predict, structures, rank, n_trials=n_trials, seed=seed, checks=checks,
                                 pseudo=pseudo, extensive=extensive)
    failed = {k: v for k, v in errors.items() if not v <= rtol}
    if failed:
        detail = ", ".join(f"{k}: {v:.3g}" for k, v in failed.items())
        raise AssertionError(
            f"not equivariant (rank {rank}{', pseudo-tensor' if pseudo else ''}): relative error {detail} "
            f"> rtol={rtol:g} over {len(structures)} structures x {n_trials} trials (all errors: "
            + ", ".join(f"{k}={v:.3g}" for k, v in errors.items()) + ")"
        )
    return errors


# ================================================================================================
# models: predictor and backend parity


def _check_dtype(dtype: str) -> str:
    dtype = str(dtype).replace("torch.", "")
    if dtype not in ("float32", "float64"):
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return dtype


def _jax_x64(dtype: str):
    """``jax.enable_x64(True)`` for float64 (a context manager: the global setting is left alone)."""
    import jax

    return jax.enable_x64(True) if dtype == "float64" else contextlib.nullcontext()


def _config(model_name: str, config):
    if config is None:
        return make_config(model_name)
    if isinstance(config, Mapping):
        return config_from_dict(model_name, dict(config))
    return config


def _load_state(weights) -> dict[str, np.ndarray]:
    if isinstance(weights, Mapping):
        return {k: np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v) for k, v in weights.items()}
    path = Path(weights)
    stem = path.with_suffix("") if path.suffix in (".safetensors", ".json") else path
    state, _ = zw.load(stem)
    return state


def _graphs(config, structures) -> list:
    graphs, _ = build_graphs(list(structures), config.graph_spec(), cache=False, progress=False, on_error="raise")
    return graphs


def _torch_model(model_name: str, config, dtype: str, seed: int, device: str = "cpu", state: Mapping | None = None):
    import torch

    previous = torch.get_default_dtype()
    # Built under the target default dtype: e3nn-style modules compute their constant buffers
    # (Clebsch-Gordan coefficients, change-of-basis matrices) at construction, in the default dtype, and
    # a later .to(float64) would keep their float32 rounding (1e-8 relative errors in a float64 model).
    # fork_rng: a seeded init that leaves the caller's RNG stream alone.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.set_default_dtype(getattr(torch, dtype))
        try:
            model = build(model_name, "torch", config)
        finally:
            torch.set_default_dtype(previous)
    model = model.to(device=device, dtype=getattr(torch, dtype))
    if state is not None:
        own = model.state_dict()
        state = {k: np.asarray(v) for k, v in state.items()}
        # zoo.core.weights writers can give 0-d counters (batch norm's num_batches_tracked) the shape (1,).
        state = {k: v.reshape(own[k].shape) if k in own and v.size == own[k].numel() == 1 else v for k, v in state.items()}
        zw.check_state_matches(own, state, what=f"{model_name} weights")
        model.load_state_dict({k: torch.as_tensor(v).to(device=device, dtype=own[k].dtype) for k, v in state.items()}, strict=True)
    return model


def _cast_floats(tree, dtype: str):
    import jax
    import jax.numpy as jnp

    return jax.tree_util.tree_map(
        lambda x: jnp.asarray(x, dtype) if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating) else jnp.asarray(x), tree)


def _flax_variables(module, batch, dtype: str, state: Mapping | None = None, seed: int = 0):
    """The flax variables of ``module`` for ``batch``, floats in ``dtype``: the torch-named ``state``
    renamed onto the module's own variable tree (``zoo.backend.params.flax_from_torch``), or, without a
    state, the module's own initialiser seeded by ``seed``. Call inside ``_jax_x64(dtype)``."""
    import jax

    if state is None:
        variables = jax.jit(lambda key, b: module.init(key, b, train=False))(jax.random.PRNGKey(seed), batch)
        return _cast_floats(variables, dtype)
    # Only the names, shapes and dtypes of the module's variables are needed: trace init, do not run it.
    shapes = jax.eval_shape(lambda key, b: module.init(key, b, train=False), jax.random.PRNGKey(seed), batch)
    # Floats in the target dtype before renaming, so float64 weights are not rounded through float32
    # (flax declares float32 parameters by default).
    like = jax.tree_util.tree_map(
        lambda s: np.zeros(s.shape, dtype if np.issubdtype(s.dtype, np.floating) else s.dtype), shapes)
    return _cast_floats(flax_from_torch(state, like=like), dtype)


def predictor(model_name: str, backend: str, config=None, weights=None, dtype: str = "float64",
              seed: int = 0, device: str = "cpu") -> Callable[[list], np.ndarray]:
    """``predict(list[Structure]) -> np.ndarray (G, *out_shape)`` (float64) for a registered model in eval mode.

    Graphs are built with ``config.graph_spec()`` (no cache); ``config`` is a config object, a dict
    (``config_to_dict`` form) or None (the family's defaults). ``weights``: None (random init seeded by
    ``seed``, each backend's own initialiser), a torch-named state dict, or a ``zoo.core.weights`` file/stem.
    Outputs are the model's raw outputs (no target normalisation; for task units use
    ``zoo.training.load_trained``). ``device`` is the torch device; jax uses its default device and runs
    jitted on padded batches, with float64 enabled only inside the calls (``jax.enable_x64``), so the
    process-wide setting is left alone.
    """
    dtype = _check_dtype(dtype)
    config = _config(model_name, config)
    state = None if weights is None else _load_state(weights)

    if backend == "torch":
        import torch

        from zoo.backend.torch import to_torch

        model = _torch_model(model_name, config, dtype, seed, device, state).eval()

        def predict(structures) -> np.ndarray:
            batch = to_torch(collate(_graphs(config, structures)), dtype=getattr(torch, dtype), device=device)
            with torch.no_grad():
                return model(batch).detach().cpu().numpy().astype(np.float64)

        return predict

    if backend != "jax":
        raise ValueError(f"unknown backend {backend!r}; choose 'torch' or 'jax'")
    import jax

    from zoo.backend.jax import to_jax

    module = build(model_name, "jax", config)
    apply = jax.jit(lambda variables, batch: module.apply(variables, batch, train=False))
    holder: dict[str, Any] = {}

    def predict(structures) -> np.ndarray:
        collated = collate(_graphs(config, structures))
        G = collated["lattice"].shape[0]
        with _jax_x64(dtype):
            # Power-of-two buckets (per_octave=1): at most 2x padding, but few compilations when a
            # check feeds batches of several sizes (supercells double them).
            batch = to_jax(pad_batch(collated, per_octave=1), dtype=getattr(jax.numpy, dtype))
            if "variables" not in holder:
                holder["variables"] = _flax_variables(module, batch, dtype, state, seed)
            out = apply(holder["variables"], batch)
            return np.asarray(out, dtype=np.float64)[:G]

    return predict


def _torch_grads_by_name(model) -> dict[str, np.ndarray]:
    return {k: p.grad.detach().cpu().numpy().astype(np.float64) for k, p in model.named_parameters() if p.grad is not None}


def _float64_grads(model_name: str, config, collated, state: Mapping, w: np.ndarray) -> dict[str, np.ndarray]:
    """d(sum w*out)/dtheta in float64 (torch, eval mode) for the weights ``state`` (float32 values, widened exactly)."""
    import torch

    from zoo.backend.torch import to_torch

    model = _torch_model(model_name, config, "float64", 0, state={k: np.asarray(v) for k, v in state.items()}).eval()
    out = model(to_torch(collated, dtype=torch.float64))
    (out * torch.as_tensor(w, dtype=torch.float64)).sum().backward()
    return _torch_grads_by_name(model)


def _max_rel_by_name(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray], what: str) -> tuple[float, str]:
    """Largest per-tensor error |a - b| / max(max |b_tensor|, 1e-3 max |b_all|), and its name.

    The floor keeps tensors whose exact value is ~0 (a bias in front of a batch norm has zero gradient
    analytically; both backends return round-off there) from turning round-off into a 100 % error.
    """
    missing = sorted(set(b) - set(a))
    if missing:
        raise AssertionError(f"{what}: jax gives no values for torch names {missing[:6]}")
    top = max((float(np.max(np.abs(v))) for v in b.values() if np.size(v)), default=0.0)
    worst, name = 0.0, ""
    for k, ref in b.items():
        got = np.asarray(a[k], dtype=np.float64).reshape(np.shape(ref))
        diff = float(np.max(np.abs(got - ref))) if np.size(ref) else 0.0
        denom = max(float(np.max(np.abs(ref))) if np.size(ref) else 0.0, 1e-3 * top)
        err = 0.0 if diff == 0.0 else (diff / denom if denom > 0 else float("inf"))
        if err > worst:
            worst, name = err, k
    return worst, name


def backend_parity_errors(model_name: str, config, structures: Sequence, dtype: str = "float64", train: bool = False,
                          grads: bool = False, seed: int = 0, worst: dict[str, str] | None = None,
                          rounding: bool = False) -> dict[str, float]:
    """Relative torch-vs-jax differences on the same weights and the same batch (see ``assert_backend_parity``).

    Keys: "output", and "grad" / "buffers" when asked for; ``worst`` (a dict, optional) receives the
    torch name of the worst gradient / buffer. ``rounding=True`` (float32 with ``grads``) adds
    "grad_rounding_torch" / "grad_rounding_jax" (eval mode): each backend's float32 gradients against the float64
    gradients of the same weights (torch), with the same per-tensor measure. They are the scale that a
    float32 parity figure can be read against: two backends cannot agree much better than each agrees
    with the exact result.
    """
    import jax
    import torch

    from zoo.backend.jax import to_jax
    from zoo.backend.torch import to_torch

    dtype = _check_dtype(dtype)
    worst = {} if worst is None else worst
    config = _config(model_name, config)
    collated = collate(_graphs(config, structures))
    G = collated["lattice"].shape[0]

    # torch: reference output (and gradients / updated buffers) on the unpadded batch.
    model = _torch_model(model_name, config, dtype, seed)
    state0 = {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}
    model.train(train)
    out_t = model(to_torch(collated, dtype=getattr(torch, dtype)))
    # A fixed random cotangent: the scalar loss sum(w * out) has a gradient that involves every output.
    w = np.random.default_rng(seed).standard_normal(tuple(out_t.shape))
    if grads:
        (out_t * torch.as_tensor(w, dtype=out_t.dtype)).sum().backward()
        grads_t = _torch_grads_by_name(model)
    param_names = {k for k, _ in model.named_parameters()}
    buffers_t = {k: v.detach().cpu().numpy().astype(np.float64) for k, v in model.state_dict().items() if k not in param_names}
    out_t = out_t.detach().cpu().numpy().astype(np.float64)

    with _jax_x64(dtype):
        module = build(model_name, "jax", config)
        batch = to_jax(pad_batch(collated), dtype=getattr(jax.numpy, dtype))
        variables = _flax_variables(module, batch, dtype, state0, seed)
        params = variables["params"]
        rest = {k: v for k, v in variables.items() if k != "params"}

        def forward(p):
            v = {"params": p, **rest}
            if train:
                out, updates = module.apply(v, batch, train=True, mutable=["batch_stats"])
            else:
                out, updates = module.apply(v, batch, train=False), {}
            return out, updates

        def loss(p):
            out, updates = forward(p)
            return jax.numpy.sum(out[:G] * jax.numpy.asarray(w, dtype=out.dtype)), (out, updates)

        try:
            if grads:
                (_, (out_j, updates)), grads_j = jax.jit(jax.value_and_grad(loss, has_aux=True))(params)
            else:
                out_j, updates = jax.jit(forward)(params)
        except Exception as exc:
            if "dropout" in str(exc).lower():
                raise ValueError(
                    f"{model_name}: train-mode parity needs deterministic layers, but this config uses dropout "
                    "(random masks cannot match across backends); compare with train=False or dropout off"
                ) from exc
            raise
        out_j = np.asarray(out_j, dtype=np.float64)[:G]
    errors = {"output": relative_error(out_j, out_t)}
    if grads:
        # Gradients carry the parameters' flax paths, hence their torch names (the weight format).
        grads_jt = torch_from_flax({"params": grads_j})
        errors["grad"], worst["grad"] = _max_rel_by_name(grads_jt, grads_t, "gradients")
        if rounding and dtype == "float32" and not train:
            exact = _float64_grads(model_name, config, collated, state0, w)
            errors["grad_rounding_torch"], worst["grad_rounding_torch"] = _max_rel_by_name(grads_t, exact, "gradients")
            errors["grad_rounding_jax"], worst["grad_rounding_jax"] = _max_rel_by_name(grads_jt, exact, "gradients")
    if train and updates and buffers_t:
        # Batch statistics updated by the training forward pass (running means / variances, counters).
        new = torch_from_flax({**rest, **updates})
        errors["buffers"], worst["buffers"] = _max_rel_by_name(new, buffers_t, "buffers")
    return errors


def assert_backend_parity(model_name: str, config, structures: Sequence, dtype: str = "float64", rtol: float | None = None,
                          train: bool = False, grads: bool = False, seed: int = 0) -> dict[str, float]:
    """Assert that the torch and the jax model give the same results on the same weights.

    Builds the torch model (seeded), renames its ``state_dict`` onto the flax module's variables
    (``zoo.backend.params.flax_from_torch``: a family's flax module declares its parameters under the torch
    names and shapes), and runs torch on ``collate(graphs)`` and jax on ``pad_batch(collate(graphs))``
    (padding must not change the real graphs). Compares the outputs; with ``grads=True`` also d(Σ w·out)/dθ
    for a fixed random w, parameter by parameter, under their torch names (``torch_from_flax``); with ``train=True`` the models run in training mode (batch
    statistics) and the updated buffers are compared too. ``rtol`` defaults to 1e-9 (float64) / 1e-4
    (float32). Returns the errors; raises AssertionError naming what differs.
    """
    dtype = _check_dtype(dtype)
    rtol = DEFAULT_RTOL[dtype] if rtol is None else rtol
    worst: dict[str, str] = {}
    errors = backend_parity_errors(model_name, config, structures, dtype=dtype, train=train, grads=grads, seed=seed, worst=worst)
    failed = {k: v for k, v in errors.items() if not v <= rtol}
    if failed:
        raise AssertionError(
            f"{model_name}: torch and jax differ on the same weights ({dtype}, {'train' if train else 'eval'} mode): "
            + ", ".join(f"{k} relative error {v:.3g}" + (f" (worst: {worst[k]})" if worst.get(k) else "") for k, v in failed.items())
            + f" > rtol={rtol:g}"
        )
    return errors
