"""Electronic dielectric tensor of a crystal from the dipole-interaction (Applequist) model.

Model
-----
Every atom i of the cell carries an isotropic point polarisability α_i (Å^3, free-atom values of
Schwerdtfeger & Nagle, see ``POLARIZABILITY``). A uniform macroscopic field E induces dipoles that are
periodic (k = 0), p_i = α_i (E + Σ_j T_ij p_j), where T_ij is the field at atom i from a unit dipole on
atom j *and all its periodic images* (Å^-3). Written for the 3N vector p: (A^-1 - T) p = S E with
A = diag(α_i ⊗ 1_3) and S the (3N, 3) stack of identities, so the polarisation is P = S^T p / V and

    ε = 1 + (4π/V) S^T (A^-1 - T)^-1 S                         (Gaussian units; ε dimensionless).

Lattice sum and boundary convention
-----------------------------------
The dipole sum at k = 0 is only conditionally convergent; its value depends on the shape of the sample
and its surroundings. We take the Ewald sum with the G = 0 term dropped ("tin-foil", conducting
boundary). That is the field of the periodic dipole array inside a sample surrounded by a conductor:
there is no depolarising field, so the macroscopic (Maxwell) field equals the applied field E, exactly
the field that enters ε = 1 + 4πP/E. Splitting the sum over a large sphere of the crystal, the
tin-foil Ewald sum equals the vacuum spherical sum plus (4π/3V) Σ_j p_j (de Leeuw, Perram & Smith,
Proc. R. Soc. A 373, 27 (1980)); for a cubic Bravais lattice the spherical sum vanishes by symmetry,
so T = (4π/3V)·1 is exactly the Lorentz field and the formula above gives Clausius-Mossotti,
(ε-1)/(ε+2) = 4πα/(3V), to round-off (tested for sc, bcc and fcc). The sum itself (real space, reciprocal
space, self term; independent of the splitting parameter η) is ``zoo.graphs.ewald.dipole_tensor``, shared
with the models' polarisable read-out (``zoo.nn.dipole``).

Damping (Thole)
---------------
Free-atom polarisabilities at bonding distances drive point dipoles into the polarisation catastrophe
(A^-1 - T singular). Thole (Chem. Phys. 59, 341 (1981)) smears each induced dipole over a charge
distribution of width set by (α_i α_j)^{1/6}; with u = r / (α_i α_j)^{1/6} the pair tensor becomes
T^Th = [3 λ5(u) r r^T / r^2 - λ3(u) 1] / r^3. We use the *linear* (cone) model, v = u/a:

    λ3 = 4v^3 - 3v^4,  λ5 = v^4   for v < 1;   λ3 = λ5 = 1 otherwise,

with a = 1.7278 (van Duijnen & Swart, J. Phys. Chem. A 102, 2399 (1998), refit of Thole's model to
molecular polarisabilities), or the exponential model (v = a u, a = 2.1304 from the same paper):
λ3 = 1 - (1 + v + v^2/2) e^{-v}, λ5 = λ3 - (v^3/6) e^{-v}.

Consistency with the Ewald split: T^Th - T = [3(λ5-1) r r^T/r^2 - (λ3-1) 1]/r^3 is short-ranged (zero
beyond u = a for the linear model, exponentially small for the exponential one), so it is added as an
absolutely convergent real-space sum over pairs *and their periodic images* on top of the exact
undamped Ewald tensor. The G = 0 / boundary handling and hence the Lorentz field are untouched; the
result stays independent of η. What damping does: it weakens the near-neighbour coupling (for a cubic
Bravais lattice the correction is isotropic, Σ (λ5-λ3)/r^3 · 1 < 0, i.e. a reduced Lorentz factor), so ε
is *below* Clausius-Mossotti whenever neighbours sit inside u < a, and exactly equal to it when no pair
does (both tested). The linear model keeps the correction exact and cheap (compact support); the
exponential model needs a cutoff (``thole_tol``) and is slower for very polarisable atoms.

Stability: (A^-1 - T) must be positive definite; we diagonalise the dimensionless Hermitian matrix
K = 1 - A^{1/2} T A^{1/2} and raise ``PolarizationCatastrophe`` when its smallest eigenvalue is not above
``min_eigenvalue``. K's eigenvalues also give ε directly (no second factorisation).
"""
from __future__ import annotations

import math

import numpy as np

# The lattice sum lives with the graphs (the polarisable read-out's featuriser needs it too); re-exported.
from zoo.graphs.ewald import THOLE_A, dipole_tensor, lattice_points, pair_vectors  # noqa: F401

__all__ = [
    "POLARIZABILITY",
    "POLARIZABILITY_AU",
    "PolarizationCatastrophe",
    "dielectric_tensor",
    "dipole_tensor",
    "polarizabilities",
]

BOHR_A = 0.529177210903  # Å (CODATA 2018)
AU3_TO_A3 = BOHR_A**3  # 1 bohr^3 = 0.148184711 Å^3

# Static dipole polarisabilities of the neutral atoms in atomic units (bohr^3): the recommended values
# of P. Schwerdtfeger & J. K. Nagle, "2018 Table of static dipole polarizabilities of the neutral
# elements in the periodic table", Mol. Phys. 117, 1200-1225 (2019). Ground states (J-averaged).
POLARIZABILITY_AU: dict[str, float] = {
    "H": 4.50711, "He": 1.38375, "Li": 164.1125, "Be": 37.74, "B": 20.5, "C": 11.3, "N": 7.4,
    "O": 5.3, "F": 3.74, "Ne": 2.6611, "Na": 162.7, "Mg": 71.2, "Al": 57.8, "Si": 37.3, "P": 25.0,
    "S": 19.4, "Cl": 14.6, "Ar": 11.083, "K": 289.7, "Ca": 160.8, "Sc": 97.0, "Ti": 100.0, "V": 87.0,
    "Cr": 83.0, "Mn": 68.0, "Fe": 62.0, "Co": 55.0, "Ni": 49.0, "Cu": 46.5, "Zn": 38.67, "Ga": 50.0,
    "Ge": 40.0, "As": 30.0, "Se": 28.9, "Br": 21.0, "Kr": 16.78, "Rb": 319.8, "Sr": 197.2, "Y": 162.0,
    "Zr": 112.0, "Nb": 98.0, "Mo": 87.0, "Tc": 79.0, "Ru": 72.0, "Rh": 66.0, "Pd": 26.14, "Ag": 55.0,
    "Cd": 46.0, "In": 65.0, "Sn": 53.0, "Sb": 43.0, "Te": 38.0, "I": 32.9, "Xe": 27.32, "Cs": 400.9,
    "Ba": 272.0,
}
# Same table in Å^3 (the unit used throughout this module).
POLARIZABILITY: dict[str, float] = {el: v * AU3_TO_A3 for el, v in POLARIZABILITY_AU.items()}



class PolarizationCatastrophe(ValueError):
    """A^-1 - T is not positive definite: the induced dipoles of this crystal diverge (ε undefined)."""


def polarizabilities(structure) -> np.ndarray:
    """(N,) isotropic atomic polarisabilities in Å^3 of the structure's sites (ordered sites only)."""
    out = np.empty(len(structure))
    for k, site in enumerate(structure):
        if not site.is_ordered:
            raise ValueError(f"site {k} of {structure.composition.reduced_formula} is disordered; "
                             "the dipole model needs one element per site")
        el = site.specie.symbol
        try:
            out[k] = POLARIZABILITY[el]
        except KeyError:
            raise ValueError(f"no polarisability for element {el!r} (site {k} of "
                             f"{structure.composition.reduced_formula}); known: {sorted(POLARIZABILITY)}") from None
    return out


def dielectric_tensor(
    structure,
    damping: str | None = "thole",
    eta: float | None = None,
    accuracy: float = 1e-15,
    thole_a: float | None = None,
    thole_tol: float = 1e-13,
    min_eigenvalue: float = 0.05,
    name: str = "",
    alpha: np.ndarray | None = None,
) -> np.ndarray:
    """Electronic dielectric tensor ε (3, 3), dimensionless, in the Cartesian frame of ``structure``.

    ``damping``: "thole" (= "thole_linear", default), "thole_exp", or None for bare point dipoles (then
    cubic Bravais lattices obey Clausius-Mossotti exactly). ``alpha`` overrides the tabulated
    polarisabilities (Å^3, one per site). Raises ``PolarizationCatastrophe`` when the smallest eigenvalue
    of K = 1 - A^{1/2} T A^{1/2} is <= ``min_eigenvalue``. At 0 the dipoles diverge (strict positive
    definiteness: pass 0.0); the default 0.05 also rejects the near-catastrophic crystals whose ε (~1/λ_min,
    up to several hundred) reflects the model's singularity rather than chemistry. ``name`` (e.g. the
    crystal id) is quoted in errors.
    """
    if damping in ("none", "None", False):
        damping = None
    lattice = np.asarray(structure.lattice.matrix, dtype=np.float64)
    frac = np.asarray(structure.frac_coords, dtype=np.float64)
    a = polarizabilities(structure) if alpha is None else np.asarray(alpha, dtype=np.float64)
    if a.shape != (len(frac),) or np.any(a <= 0):
        raise ValueError(f"alpha must be ({len(frac)},) positive polarisabilities in Å^3, got {a!r}")
    volume = abs(float(np.linalg.det(lattice)))
    T = dipole_tensor(lattice, frac, a, damping=damping, eta=eta, accuracy=accuracy,
                      thole_a=thole_a, thole_tol=thole_tol)
    sq = np.repeat(np.sqrt(a), 3)
    K = np.eye(len(sq)) - sq[:, None] * T * sq[None, :]
    lam, Q = np.linalg.eigh(K)
    if not lam[0] > min_eigenvalue:
        label = f"{name!r} " if name else ""
        raise PolarizationCatastrophe(
            f"polarisation catastrophe for {label}{structure.composition.reduced_formula} "
            f"(V = {volume:.3f} Å^3, damping={damping!r}): smallest eigenvalue of 1 - A^1/2 T A^1/2 is "
            f"{lam[0]:.4g} <= {min_eigenvalue:g}; the induced dipoles diverge. Use damping='thole', a less "
            "dense structure, or smaller polarisabilities."
        )
    # ε - 1 = (4π/V) (A^{1/2} S)^T K^{-1} (A^{1/2} S)
    AS = (sq[:, None] * np.tile(np.eye(3), (len(a), 1)))  # (3N, 3)
    W = Q.T @ AS
    eps = np.eye(3) + (4.0 * math.pi / volume) * (W.T @ (W / lam[:, None]))
    return 0.5 * (eps + eps.T)
