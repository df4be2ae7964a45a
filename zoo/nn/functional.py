"""Backend-neutral building blocks of the models (see ``zoo.nn``)."""
from __future__ import annotations

import functools

import numpy as np


# Centres one Gaussian basis may have: 1e7 is 80 MB of float64 and a step of ~1e-6 Å over 8 Å, far below
# any distance resolution that matters. A smaller step is refused before anything is allocated (the
# training's memory check then sizes the layers that the basis feeds, zoo.training.budget).
MAX_GAUSSIAN_CENTRES = 10_000_000


@functools.lru_cache(maxsize=16)
def _gaussian_centres(dmin: float, dmax: float, step: float) -> np.ndarray:
    n = int(round((dmax - dmin) / step)) + 1  # CGCNN: np.arange(dmin, dmax + step, step)
    if n > MAX_GAUSSIAN_CENTRES:
        raise ValueError(f"a Gaussian basis from dmin={dmin} to dmax={dmax} Å in steps of step={step} Å would have "
                         f"{n:.3g} centres (limit {MAX_GAUSSIAN_CENTRES:.0e}); use a larger step (CGCNN's is 0.2 Å, "
                         "--set step=0.2)")
    # k * step + dmin in float64, as the Python loop it replaces computed it (the same roundings), in one pass.
    centres = dmin + np.arange(n, dtype=np.float64) * step
    centres.setflags(write=False)  # shared by every call (and cached on the device by ``xp.const``)
    return centres


def gaussian_expansion(d, dmin: float = 0.0, dmax: float = 8.0, step: float = 0.2, var: float | None = None, xp=np):
    """CGCNN's Gaussian distance filter: ``exp(-(d - mu_k)^2 / var^2)`` for centres ``mu_k`` (Å).

    The centres are ``dmin, dmin + step, ..., dmax`` (41 for the defaults); ``var`` defaults to
    ``step``. ``xp`` is a ``zoo.backend`` ops module or an array namespace (numpy, torch or
    jax.numpy); the output has shape ``d.shape + (K,)`` and the dtype of ``d``.
    """
    if step <= 0 or dmax <= dmin:
        raise ValueError(f"gaussian_expansion needs step > 0 and dmax > dmin; got dmin={dmin}, dmax={dmax}, step={step}")
    var = step if var is None else var
    mu = _gaussian_centres(float(dmin), float(dmax), float(step))
    d = d[..., None]
    if hasattr(xp, "const"):  # a zoo.backend ops module: the centres once per device and dtype, not every call
        centres = xp.const(mu, like=d)
    else:
        mu = mu.tolist()  # a list: torch warns about (and may write to) a read-only numpy array
        try:  # array-API: put the centres on d's device (torch on GPU, jax on an accelerator)
            centres = xp.asarray(mu, dtype=d.dtype, device=d.device)
        except (TypeError, AttributeError, ValueError):  # namespaces without a ``device`` argument
            centres = xp.asarray(mu, dtype=d.dtype)
    return xp.exp(-((d - centres) ** 2) / var**2)


def masked_segment_mean(x, segments, n_segments: int, mask=None, *, xp):
    """Mean of the rows of ``x`` in each of ``n_segments`` segments, over the rows where ``mask`` is True.

    ``segments[i]`` is the segment of row i (e.g. ``node_graph``: atom -> crystal). Masked-out rows
    (padding atoms) count for nothing, and a segment without real rows (a padding graph) gives 0
    rather than padding junk. ``mask`` None: every row counts. ``xp`` is a ``zoo.backend`` ops module.
    """
    if mask is None:
        return xp.segment_mean(x, segments, n_segments)  # empty segments give 0 there too
    w = xp.astype(mask, x.dtype)
    total = xp.segment_sum(x * w.reshape((-1,) + (1,) * (x.ndim - 1)), segments, n_segments)
    count = xp.segment_sum(w, segments, n_segments).clip(min=1)
    return total / count.reshape((-1,) + (1,) * (x.ndim - 1))


# ln(1 + v) of the volume per atom v (Å^3/atom) spanned by the density basis: v from 1 to 300 Å^3/atom
# covers the generated crystals (1.7-295 on embedded_dielectric) and real solids (6-53 on the MP dielectric
# set); outside it the first or last Gaussian's tail still varies, so the feature saturates, not breaks.
DENSITY_RANGE = (float(np.log1p(1.0)), float(np.log1p(300.0)))


def check_density_basis(value, owner: str) -> None:
    """The rule every family's ``density_basis`` follows: 0 (off) or at least 2 Gaussians (their spacing
    divides by n - 1)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0 or value == 1:
        raise ValueError(f"{owner}.density_basis must be 0 (off) or an integer >= 2, got {value!r}")


def volume_per_atom(batch, xp):
    """(G,) cell volume per atom of each graph in Å^3/atom: |det(lattice)| over the graph's atoms (a graph
    without atoms, i.e. padding, counts as one, so that nothing divides by zero)."""
    L = batch["lattice"]
    ones = xp.ones_like(batch["positions"][:, 0])
    count = xp.segment_sum(ones, batch["node_graph"], L.shape[0])
    return cell_volume(L, xp) / xp.maximum(count, xp.ones_like(count))


def cell_volume(L, xp):
    """(G,) |det| of lattices (G, 3, 3) in Å^3, written out (no determinant op needed in either backend)."""
    det = (L[:, 0, 0] * (L[:, 1, 1] * L[:, 2, 2] - L[:, 1, 2] * L[:, 2, 1])
           - L[:, 0, 1] * (L[:, 1, 0] * L[:, 2, 2] - L[:, 1, 2] * L[:, 2, 0])
           + L[:, 0, 2] * (L[:, 1, 0] * L[:, 2, 1] - L[:, 1, 1] * L[:, 2, 0]))
    return xp.maximum(det, -det)


def density_features(batch, n_basis: int, xp):
    """(N, n_basis) per atom: its crystal's volume per atom expanded in ``n_basis`` Gaussians of ln(1 + v)
    over ``DENSITY_RANGE`` (width = spacing). An invariant of the crystal, so a model that adds it to its
    scalar inputs keeps its equivariance; it is what a network that averages over neighbours and atoms
    cannot otherwise see: how densely the atoms are packed (a permittivity follows the polarisability per
    volume, Clausius-Mossotti)."""
    lo, hi = DENSITY_RANGE
    step = (hi - lo) / (n_basis - 1)
    u = xp.log1p(volume_per_atom(batch, xp))
    phi = gaussian_expansion(xp.astype(u, batch["positions"].dtype), lo, hi, step, xp=xp)
    return xp.take(phi, batch["node_graph"], axis=0)
