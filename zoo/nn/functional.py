"""Backend-neutral building blocks of the models (see ``zoo.nn``)."""
from __future__ import annotations

import numpy as np


def gaussian_expansion(d, dmin: float = 0.0, dmax: float = 8.0, step: float = 0.2, var: float | None = None, xp=np):
    """CGCNN's Gaussian distance filter: ``exp(-(d - mu_k)^2 / var^2)`` for centres ``mu_k`` (Å).

    The centres are ``dmin, dmin + step, ..., dmax`` (41 for the defaults); ``var`` defaults to
    ``step``. ``xp`` is the array namespace (numpy, torch or jax.numpy); the output has shape
    ``d.shape + (K,)`` and the dtype of ``d``.
    """
    if step <= 0 or dmax <= dmin:
        raise ValueError(f"gaussian_expansion needs step > 0 and dmax > dmin; got dmin={dmin}, dmax={dmax}, step={step}")
    var = step if var is None else var
    n = int(round((dmax - dmin) / step)) + 1  # CGCNN: np.arange(dmin, dmax + step, step)
    mu = [dmin + k * step for k in range(n)]
    d = d[..., None]
    try:  # array-API: put the centres on d's device (torch on GPU, jax on an accelerator)
        centres = xp.asarray(mu, dtype=d.dtype, device=d.device)
    except (TypeError, AttributeError, ValueError):  # namespaces without a ``device`` argument
        centres = xp.asarray(mu, dtype=d.dtype)
    return xp.exp(-((d - centres) ** 2) / var**2)
