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
