"""Subduction of O(3) irreps (l, parity) into point-group irreps, in e3nn's real basis.

The O(3) irrep (l, p) is e3nn's ``Irrep(l, p)``: real spherical harmonics in e3nn's order and
normalisation (in e3nn 0.6, D^1(R) = R: the components of l = 1 are x, y, z), and D(-I) = p·I,
i.e. an improper operation g = -R (R proper) acts as p·D^l(R). The Wigner matrices are taken from e3nn itself
(torch), or from e3nn-jax when torch/e3nn is not importable. Both are imported lazily so that
``zoo.symmetry`` needs numpy only; the multiplicities need neither (characters below).

Precision trap: float64 *input* is not enough. e3nn (torch) builds its so(3) generators with
``torch.sqrt`` of integer tensors, which yields torch's *default* dtype, so with the default
float32 its float64 D matrices are only good to ~1e-6 (|D(g)D(h) - D(gh)| ≈ 5e-6 at l = 6). We set
the default dtype to float64 for the duration of the call and restore it in ``finally`` (a
process-wide setting, briefly: do not call this concurrently with float32 model code in another
thread). e3nn-jax runs inside ``jax.enable_x64(True)`` used as a context manager (scoped, never a
process-wide switch). Every D is checked to be an orthogonal representation to 1e-12 before use.

The D of the 48 operations of m-3m and the 24 of 6/mmm are computed once per l (parity +1) and
every group takes its rows through its embedding in its frame holohedry; the parity enters as
D_p(g) = p·D_+(g) for improper g, which is e3nn's convention (tested against e3nn's Irrep(l, -1)).

Multiplicities come from characters computed without e3nn:
χ_l(θ) = sin((2l+1)θ/2) / sin(θ/2) (= 2l+1 at θ = 0) for a proper rotation by θ, and p·χ_l(θ(-g))
for an improper g. The subduction matrix of irrep γ has its copies as column blocks,
B = [B_1 | ... | B_m] (2l+1, m dγ), with D(g) B_k = B_k Γγ(g), BᵀB = I; the blocks of all irreps,
side by side in the group's irrep order, form a square orthogonal matrix.
"""
from __future__ import annotations

import contextlib
import functools
import math

import numpy as np

from .coupling import intertwiners, multiplicity

LMAX_DOCUMENTED = 6  # validated range; any l works


def _rotation_angle(P: np.ndarray) -> float:
    return float(np.arccos(np.clip((np.trace(P) - 1.0) / 2.0, -1.0, 1.0)))


def o3_character(l: int, parity: int, R: np.ndarray) -> float:
    """Character of e3nn's Irrep(l, parity) at the O(3) matrix R, without e3nn."""
    det = 1 if np.linalg.det(R) > 0 else -1
    theta = _rotation_angle(det * R)
    if abs(math.sin(theta / 2)) < 1e-12:
        chi = float(2 * l + 1)
    else:
        chi = math.sin((2 * l + 1) * theta / 2) / math.sin(theta / 2)
    return chi * (parity if det < 0 else 1)


def o3_characters(l: int, parity: int, ops: np.ndarray) -> np.ndarray:
    return np.array([o3_character(l, parity, R) for R in ops])


def check_parity(parity: int) -> int:
    if parity not in (1, -1):
        raise ValueError(f"parity must be +1 or -1 (e3nn's p), got {parity!r}")
    return int(parity)


@contextlib.contextmanager
def torch_default_float64():
    """Temporarily make float64 torch's default dtype (see the module docstring for why)."""
    import torch

    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(old)


def wigner_d_torch(l: int, parity: int, ops: np.ndarray) -> np.ndarray:
    """e3nn (torch) Irrep(l, p).D_from_matrix in float64, as numpy."""
    import torch
    from e3nn import o3

    with torch_default_float64(), torch.no_grad():
        R = torch.tensor(np.array(ops, dtype=np.float64), dtype=torch.float64)
        D = o3.Irrep(l, parity).D_from_matrix(R)
    return D.numpy().astype(np.float64)


def wigner_d_jax(l: int, parity: int, ops: np.ndarray) -> np.ndarray:
    """e3nn-jax Irrep(l, p).D_from_matrix in float64 (x64 enabled only inside this call)."""
    import jax
    import jax.numpy as jnp
    import e3nn_jax

    enable = getattr(jax, "enable_x64", None)
    ctx = enable(True) if enable is not None else jax.experimental.enable_x64()
    with ctx:
        R = jnp.asarray(np.asarray(ops, dtype=np.float64), dtype=jnp.float64)
        D = e3nn_jax.Irrep(l, parity).D_from_matrix(R)
        out = np.asarray(D, dtype=np.float64)
    return out


def wigner_d(l: int, parity: int, ops: np.ndarray, backend: str = "auto") -> np.ndarray:
    """(|G|, 2l+1, 2l+1) e3nn Wigner matrices of the operations; backend auto|torch|jax."""
    check_parity(parity)
    if backend == "torch":
        return wigner_d_torch(l, parity, ops)
    if backend == "jax":
        return wigner_d_jax(l, parity, ops)
    if backend != "auto":
        raise ValueError(f"backend must be auto, torch or jax, got {backend!r}")
    try:
        import e3nn  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        return wigner_d_jax(l, parity, ops)
    return wigner_d_torch(l, parity, ops)


def representation_error(D: np.ndarray, table: np.ndarray) -> float:
    """max of |DᵀD - I| and |D(g)D(h) - D(gh)| over the group."""
    n = D.shape[1]
    orth = np.abs(np.einsum("gji,gjk->gik", D, D) - np.eye(n)).max()
    hom = np.abs(np.einsum("iab,jbc->ijac", D, D) - D[table]).max()
    return float(max(orth, hom))


@functools.lru_cache(maxsize=None)
def frame_wigner(frame: str, l: int, backend: str = "auto") -> np.ndarray:
    """D^l (parity +1) of the operations of the holohedry ``frame`` (m-3m or 6/mmm), checked."""
    from . import point_group

    H = point_group(frame)
    D = wigner_d(l, 1, H.operations, backend)
    err = representation_error(D, H.table)
    if err > 1e-12:
        raise RuntimeError(f"e3nn Wigner matrices for l={l} are a representation only to {err:.1e} "
                           "(float32 somewhere?); refusing to build subduction tables from them")
    D.setflags(write=False)
    return D


def group_wigner(l: int, parity: int, ops: np.ndarray, frame: str, embedding: np.ndarray) -> np.ndarray:
    """D^l_p of a group's operations via its frame holohedry: D_p(g) = p^[det g < 0] D_+(g)."""
    D = frame_wigner(frame, l)[embedding]
    det = np.sign(np.linalg.det(ops))
    return D * np.where(det < 0, float(check_parity(parity)), 1.0)[:, None, None]


def subduction_multiplicities(l: int, parity: int, ops: np.ndarray, chars: np.ndarray, labels) -> dict[str, int]:
    """{label: multiplicity} of the G-irreps in (l, parity), from characters only (no e3nn)."""
    chi = o3_characters(l, parity, ops)
    out = {}
    for k, lab in enumerate(labels):
        m = multiplicity(chi, chars[k])
        if m:
            out[lab] = m
    total = sum(m * int(round(chars[labels.index(lab)][0])) for lab, m in out.items())
    if total != 2 * l + 1:
        raise RuntimeError(f"subduction of l={l} does not add up: {total} != {2 * l + 1}")
    return out


def subduce(D: np.ndarray, irreps: dict[str, np.ndarray], mults: dict[str, int]) -> dict[str, tuple[int, np.ndarray]]:
    """{label: (m, B)} with B (2l+1, m d) orthonormal intertwining column blocks (Dirl's rule)."""
    out = {}
    for lab, m in mults.items():
        U = intertwiners(D, irreps[lab], m)  # (m, 2l+1, d)
        B = np.concatenate(list(U), axis=1)
        B.setflags(write=False)
        out[lab] = (m, B)
    return out
