"""A polarisable read-out: learned atomic polarisabilities, coupled through the crystal's dipole field.

Written once for both backends (``xp``). Every atom i carries an isotropic point polarisability α_i
(Å^3), predicted by the network from its environment. In a uniform field E the induced dipoles are
self-consistent, p_i = α_i (E + Σ_j T_ij p_j), with T the periodic (k = 0, tin-foil Ewald) dipole
interaction tensor (Å^-3); the susceptibility of the crystal is then

    χ = (4π/V) S^T (A^-1 - T)^-1 S = (4π/V) (A^1/2 S)^T K^-1 (A^1/2 S),   K = 1 - A^1/2 T A^1/2,

(Gaussian units, ε = 1 + χ), the Applequist dipole-interaction model that also labels the
``embedded_dielectric`` task (``zoo.tasks.embedded.dielectric``, where the conventions are written up).
What is learned is α_i; what is physics is the coupling, which is long-ranged (a lattice sum) and
many-body (the inverse), neither of which a message-passing network with a 5 Å radius and mean pooling
can represent.

- T arrives precomputed and undamped (the geometry's alone): the ``dipole_pair`` set of the ``dipole``
  graph featuriser (``zoo.graphs.dipole``).
- Thole's damping depends on α, so it is added here, on the featuriser's ``dipole_near`` pairs (all
  within its damping radius R, 8 Å): for a pair at distance r, u = r / (α_i α_j)^{1/6}, v = min(u/a, 1)
  (linear "cone" model, a = 1.7278, van Duijnen & Swart 1998), T^Th - T = [3(v^4 - 1) r̂ r̂^T -
  (4v^3 - 3v^4 - 1) 1] / r^3, zero for u >= a. With every α_i <= ``alpha_max(R)`` = (R/a)^3 (99 Å^3 at
  8 Å; the largest free-atom value is Cs's 59) every damped pair is in the set, so the read-out is the
  labeller's model exactly (tested to 1e-9).
- Every crystal of a batch is solved on its own (batched dense solve of (G, 3m, 3m), m = the largest
  crystal's atom count), with identity rows on padding, so the cost is G·(3m)^3, not (3N)^3.

Equivariance: α is invariant, T_ij and the Thole term rotate as rank-2 tensors (R T R^T), K^-1 with
them, so χ -> R χ R^T exactly (to the solver's round-off).

Stability: K must stay positive definite; at the polarisation catastrophe its smallest eigenvalue λ
reaches 0 and χ diverges, and beyond it χ is finite but unphysical. A network that learns α crosses it
(a TFN with this read-out, learning rate 5e-3: validation Fnorm 4e4 in the first epochs). With
``delta`` > 0 each eigenvalue's 1/λ becomes λ / (λ² + δ²): equal to it to a relative (δ/λ)², bounded
by 1/(2δ) at λ = δ, smooth through 0, so neither the prediction nor its gradient has a pole anywhere.
The task's crystals all have λ >= 0.05 (its generator refuses the rest): δ = 0.01 changes their
prediction by at most 4 %, the typical one (λ ~ 0.5) by 0.04 %.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .functional import cell_volume

THOLE_A = 1.7278  # van Duijnen & Swart, J. Phys. Chem. A 102, 2399 (1998): the linear model's a


def alpha_max(damping_radius: float, a: float = THOLE_A) -> float:
    """Largest polarisability (Å^3) whose damped pairs all lie within ``damping_radius`` (Å): (R/a)^3."""
    return (damping_radius / a) ** 3


def thole_correction(vec, alpha_i, alpha_j, a: float, xp):
    """(E, 3, 3) Å^-3: Thole's linear damping minus the bare dipole tensor for pair vectors ``vec`` (E, 3) in Å
    between atoms of polarisabilities ``alpha_i``, ``alpha_j`` (E,) in Å^3; exactly zero at u >= a."""
    r = xp.norm(vec, axis=-1)
    width = xp.exp(xp.log(alpha_i * alpha_j) / 6.0)  # (α_i α_j)^{1/6}, Å
    v = xp.minimum(r / (width * a), xp.ones_like(r))
    v3 = v * v * v
    l3m1 = 4.0 * v3 - 3.0 * v3 * v - 1.0  # λ3 - 1
    l5m1 = v3 * v - 1.0  # λ5 - 1
    inv_r3 = 1.0 / (r * r * r)
    rhat = vec / r[:, None]
    eye = xp.const(np.eye(3), like=vec)
    return (3.0 * l5m1 * inv_r3)[:, None, None] * rhat[:, :, None] * rhat[:, None, :] - (l3m1 * inv_r3)[:, None, None] * eye


def _blocks(values, graph, row, col, m: int, n_graphs: int, xp):
    """Pair blocks (P, 3, 3) at (graph, local row, local col) summed into (G, 3m, 3m)."""
    flat = (graph * m + row) * m + col
    dense = xp.add_at(xp.zeros((n_graphs * m * m, 3, 3), like=values), flat, values)
    return xp.einsum("gijab->giajb", dense.reshape((n_graphs, m, m, 3, 3))).reshape((n_graphs, 3 * m, 3 * m))


def susceptibility(alpha, batch: Mapping[str, Any], xp, max_atoms: int, thole_a: float = THOLE_A, delta: float = 0.0):
    """(G, 3, 3) χ = ε - 1 of every crystal of ``batch`` (module docstring), symmetric.

    ``alpha``: (N,) polarisabilities in Å^3, positive on real atoms (padding rows are ignored), at most
    ``alpha_max`` of the featuriser's damping radius for the damping to be complete. The batch needs the
    ``dipole_pair`` and ``dipole_near`` sets (``zoo.graphs.dipole``). ``max_atoms`` m: at least the largest
    crystal's atom count (a static size for ``jit``; any larger m gives the same numbers). ``delta`` > 0
    replaces K^-1 by the regularised K (K^2 + delta^2)^-1 (module docstring, Stability)."""
    pos, lat = batch["positions"], batch["lattice"]
    n, g = pos.shape[0], lat.shape[0]
    node_graph = batch["node_graph"]
    real = xp.astype(batch["node_mask"], pos.dtype) if "node_mask" in batch else xp.ones_like(pos[:, 0])
    # padding atoms get α = 1 inside the arithmetic (finite roots and logs) and weight 0 outside it
    alpha = xp.where(real > 0, alpha, xp.ones_like(alpha))
    counts = batch["n_nodes"]
    start = xp.cumsum(counts, axis=0) - counts
    local = xp.const(np.arange(n), like=counts) - xp.take(start, node_graph, axis=0)
    # padding atoms sit after the last real graph's atoms: fold them into the last slot (their weight is 0)
    local = xp.minimum(xp.maximum(local, xp.zeros_like(local)), xp.zeros_like(local) + (max_atoms - 1))

    # the undamped lattice sum, then Thole on the near pairs (real pairs only)
    pair_graph = xp.take(node_graph, batch["dipole_i"], axis=0)
    T_pairs = batch["dipole_T"]
    if "dipole_pair_mask" in batch:
        T_pairs = T_pairs * xp.astype(batch["dipole_pair_mask"], pos.dtype)[:, None, None]
    T = _blocks(T_pairs, pair_graph, xp.take(local, batch["dipole_i"], axis=0), xp.take(local, batch["dipole_j"], axis=0),
                max_atoms, g, xp)
    i, j = batch["dipole_near_i"], batch["dipole_near_j"]
    damp = thole_correction(batch["dipole_near_vec"], xp.take(alpha, i, axis=0), xp.take(alpha, j, axis=0), thole_a, xp)
    if "dipole_near_mask" in batch:
        damp = damp * xp.astype(batch["dipole_near_mask"], pos.dtype)[:, None, None]
    T = T + _blocks(damp, xp.take(node_graph, i, axis=0), xp.take(local, i, axis=0), xp.take(local, j, axis=0),
                    max_atoms, g, xp)

    # s = A^1/2 on the (G, 3m) layout, zero on padding slots; K = 1 - s T s; rhs = s S
    root = xp.sqrt(alpha) * real
    slot = node_graph * max_atoms + local
    s = xp.add_at(xp.zeros((g * max_atoms,), like=root), slot, root).reshape((g, max_atoms))
    s3 = (s[:, :, None] * xp.const(np.ones(3), like=s)).reshape((g, 3 * max_atoms))
    eye = xp.const(np.eye(3 * max_atoms), like=s)
    K = eye - s3[:, :, None] * T * s3[:, None, :]
    rhs = s3[:, :, None] * xp.const(np.tile(np.eye(3), (max_atoms, 1)), like=s)  # (G, 3m, 3)
    if delta > 0:  # K (K² + δ²)^-1 rhs = solve(K² + δ², K rhs): K is symmetric, so the factors commute
        x = xp.solve(xp.einsum("gij,gjk->gik", K, K) + (delta * delta) * eye, xp.einsum("gij,gjk->gik", K, rhs))
    else:
        x = xp.solve(K, rhs)
    chi = xp.einsum("gka,gkb->gab", rhs, x)
    chi = (4.0 * math.pi) * chi / cell_volume(lat, xp)[:, None, None]
    return 0.5 * (chi + xp.einsum("gab->gba", chi))
