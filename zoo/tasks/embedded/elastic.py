"""Clamped-ion (Born) elastic tensor of a pair potential: an exactly computable rank-4 tensor target.

What is computed
----------------
For a pair potential E = (1/2) Σ_i Σ_{j≠i, images} φ_ij(r_ij) and a homogeneous deformation of the
cell at fixed fractional coordinates (clamped ions, no internal relaxation), the second derivative of
the energy density with respect to the Lagrangian (Green) strain η at the given geometry is

    C_abcd = (1/V) ∂²E/∂η_ab ∂η_cd = (1/2V) Σ_{ordered pairs} [φ''(r) - φ'(r)/r] r_a r_b r_c r_d / r²

(r = r_j + image - r_i in Å, V the cell volume in Å³, φ in eV; eV/Å³ -> GPa with 160.21766208).
This is what ``born_elastic_tensor`` returns, in GPa, shape (3, 3, 3, 3).

Precisely:

- It is totally symmetric in (a, b, c, d), so it has the elastic index symmetry ``ijkl=jikl=klij``
  and, beyond it, the Cauchy relations (C12 = C66, C13 = C55, C23 = C44, C14 = C56, ...) at any
  geometry: they are a property of the Born term of central pair forces.
- It is the stress-strain stiffness of the crystal only where the cell is at zero stress. Under a
  stress σ (``virial_stress``) the coefficients that relate stress increments to strain are
  B_abcd = C_abcd + (σ_ac δ_bd + σ_bc δ_ad + σ_ad δ_bc + σ_bd δ_ac)/2 - σ_ab δ_cd (Wallace), which
  break the Cauchy relations and, for a non-hydrostatic σ, the ab <-> cd symmetry; we do not add
  them: the target is the Born term at the given geometry, whatever its stress.
- It is the clamped-ion tensor: where atoms are not at centres of inversion, relaxing the internal
  coordinates under strain lowers the elastic constants; that correction is not included.

Potentials (``potential=``), written with the position of the minimum r_m and the depth ε of a pair:

- ``"lj"``:    φ = ε [(r_m/r)^12 - 2 (r_m/r)^6]            (φ''(r_m) = 72 ε / r_m²)
- ``"morse"``: φ = ε [e^{-2a(r-r_m)} - 2 e^{-a(r-r_m)}], a = ``alpha_rm`` / r_m, default 6, which
  gives the Morse well the curvature of the LJ well of the same r_m and ε.

Per-element parameters (``params=``), mixed with the Lorentz-Berthelot rules r_m,ij = (r_m,i + r_m,j)/2,
ε_ij = sqrt(ε_i ε_j):

- ``"uff"``: the nonbonded parameters of the Universal Force Field, x_i (van der Waals distance = the
  LJ minimum, Å) and D_i (well depth, kcal/mol, converted to eV), for Z = 1..103: A. K. Rappé,
  C. J. Casewit, K. S. Colwell, W. A. Goddard III, W. M. Skiff, J. Am. Chem. Soc. 114, 10024 (1992),
  Table I, as distributed in RDKit / Open Babel (UFF.prm). UFF itself mixes x_i geometrically; we
  use Lorentz-Berthelot (arithmetic) mixing. These are van der Waals parameters: in ionic or
  covalent crystals the bonds are much shorter than x_ij, so the repulsive wall dominates.
- ``"covalent"`` (model parameters, not fitted to any property): r_m,i = 2 × the covalent radius of
  B. Cordero et al., Dalton Trans. 2008, 2832 (``ase.data.covalent_radii``, Z = 1..96), so that
  r_m,ij = r_cov,i + r_cov,j puts the well at the usual bond length, and ε_i = ``depth`` (1 eV).
- a dict {element symbol or Z: (r_m in Å, ε in eV)} with an entry for every element present.

Defaults: ``"lj"`` uses ``"uff"``, ``"morse"`` uses ``"covalent"``.

Cutoff
------
φ is multiplied by a switching function S(r) that is 1 below r_on and 0 beyond r_c, with
S = 1 - 10x³ + 15x⁴ - 6x⁵, x = (r - r_on)/(r_c - r_on): S, S' and S'' are continuous at both ends,
so the energy, the stress and this tensor (which needs φ'') change continuously when a neighbour
shell crosses the cutoff. φ_s'' = φ''S + 2φ'S' + φS''. With ``cutoff=None`` each pair has its own
r_c = 2.5 σ_ij = 2.5·2^(-1/6)·r_m,ij (LJ) or 2 r_m,ij (Morse, where e^{-a(r-r_m)} = e^{-6}); an
explicit ``cutoff`` (Å) applies to every pair. r_on = r_c - ``switch_width`` (default 0.2 r_c).
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from zoo.graphs import to_structure

EV_PER_A3_TO_GPA = 160.21766208
KCAL_PER_MOL_TO_EV = 4.184 / 96.48533212  # 1 kcal/mol in eV (4.184 kJ/mol; F = 96.485 kJ/mol/eV)
MIN_DISTANCE = 0.5  # Å: closer pairs mean overlapping atoms, not a crystal

# UFF nonbonded parameters (Rappé et al. 1992, Table I): Z  symbol  x_i (Å)  D_i (kcal/mol)
_UFF_TABLE = """
1 H 2.886 0.044
2 He 2.362 0.056
3 Li 2.451 0.025
4 Be 2.745 0.085
5 B 4.083 0.180
6 C 3.851 0.105
7 N 3.660 0.069
8 O 3.500 0.060
9 F 3.364 0.050
10 Ne 3.243 0.042
11 Na 2.983 0.030
12 Mg 3.021 0.111
13 Al 4.499 0.505
14 Si 4.295 0.402
15 P 4.147 0.305
16 S 4.035 0.274
17 Cl 3.947 0.227
18 Ar 3.868 0.185
19 K 3.812 0.035
20 Ca 3.399 0.238
21 Sc 3.295 0.019
22 Ti 3.175 0.017
23 V 3.144 0.016
24 Cr 3.023 0.015
25 Mn 2.961 0.013
26 Fe 2.912 0.013
27 Co 2.872 0.014
28 Ni 2.834 0.015
29 Cu 3.495 0.005
30 Zn 2.763 0.124
31 Ga 4.383 0.415
32 Ge 4.280 0.379
33 As 4.230 0.309
34 Se 4.205 0.291
35 Br 4.189 0.251
36 Kr 4.141 0.220
37 Rb 4.114 0.040
38 Sr 3.641 0.235
39 Y 3.345 0.072
40 Zr 3.124 0.069
41 Nb 3.165 0.059
42 Mo 3.052 0.056
43 Tc 2.998 0.048
44 Ru 2.963 0.056
45 Rh 2.929 0.053
46 Pd 2.899 0.048
47 Ag 3.148 0.036
48 Cd 2.848 0.228
49 In 4.463 0.599
50 Sn 4.392 0.567
51 Sb 4.420 0.449
52 Te 4.470 0.398
53 I 4.500 0.339
54 Xe 4.404 0.332
55 Cs 4.517 0.045
56 Ba 3.703 0.364
57 La 3.522 0.017
58 Ce 3.556 0.013
59 Pr 3.606 0.010
60 Nd 3.575 0.010
61 Pm 3.547 0.009
62 Sm 3.520 0.008
63 Eu 3.493 0.008
64 Gd 3.368 0.009
65 Tb 3.451 0.007
66 Dy 3.428 0.007
67 Ho 3.409 0.007
68 Er 3.391 0.007
69 Tm 3.374 0.006
70 Yb 3.355 0.228
71 Lu 3.640 0.041
72 Hf 3.141 0.072
73 Ta 3.170 0.081
74 W 3.069 0.067
75 Re 2.954 0.066
76 Os 3.120 0.037
77 Ir 2.840 0.073
78 Pt 2.754 0.080
79 Au 3.293 0.039
80 Hg 2.705 0.385
81 Tl 4.347 0.680
82 Pb 4.297 0.663
83 Bi 4.370 0.518
84 Po 4.709 0.325
85 At 4.750 0.284
86 Rn 4.765 0.248
87 Fr 4.900 0.050
88 Ra 3.677 0.404
89 Ac 3.478 0.033
90 Th 3.396 0.026
91 Pa 3.424 0.022
92 U 3.395 0.022
93 Np 3.424 0.019
94 Pu 3.424 0.016
95 Am 3.381 0.014
96 Cm 3.326 0.013
97 Bk 3.339 0.013
98 Cf 3.313 0.013
99 Es 3.299 0.012
100 Fm 3.286 0.012
101 Md 3.274 0.011
102 No 3.248 0.011
103 Lr 3.236 0.011
"""


def _parse_uff() -> dict[int, tuple[float, float]]:
    out = {}
    for line in _UFF_TABLE.strip().splitlines():
        z, _sym, x, d = line.split()
        out[int(z)] = (float(x), float(d) * KCAL_PER_MOL_TO_EV)
    return out


UFF_PARAMS: dict[int, tuple[float, float]] = _parse_uff()  # Z -> (r_m Å, ε eV)
POTENTIALS = ("lj", "morse")
_DEFAULT_PARAMS = {"lj": "uff", "morse": "covalent"}
_CUTOFF_FACTOR = {"lj": 2.5 * 2.0 ** (-1.0 / 6.0), "morse": 2.0}  # r_c / r_m per pair


def element_parameters(numbers: np.ndarray, params: str | Mapping[Any, tuple[float, float]] = "uff",
                       depth: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-atom (r_m in Å, ε in eV) from a named table or a {symbol or Z: (r_m, ε)} dict."""
    numbers = np.asarray(numbers, dtype=np.int64)
    zs = sorted(set(numbers.tolist()))
    if isinstance(params, str):
        if params == "uff":
            missing = [z for z in zs if z not in UFF_PARAMS]
            if missing:
                raise ValueError(f"UFF has no parameters for Z={missing} (table covers Z=1..103)")
            table = {z: UFF_PARAMS[z] for z in zs}
        elif params == "covalent":
            from ase.data import covalent_radii

            missing = [z for z in zs if not 1 <= z <= 96]
            if missing:
                raise ValueError(f"Cordero covalent radii cover Z=1..96, not Z={missing}; pass params= a dict")
            table = {z: (2.0 * float(covalent_radii[z]), float(depth)) for z in zs}
        else:
            raise ValueError(f"unknown parameter table {params!r}; use 'uff', 'covalent' or a dict "
                             f"{{element: (r_m Å, eps eV)}}")
    else:
        from pymatgen.core import Element

        by_z = {}
        for key, val in params.items():
            z = int(key) if isinstance(key, (int, np.integer)) else Element(key).Z
            rm, eps = (float(v) for v in val)
            if rm <= 0 or eps < 0:
                raise ValueError(f"parameters for {key!r} must have r_m > 0 and eps >= 0, got {val}")
            by_z[z] = (rm, eps)
        missing = [z for z in zs if z not in by_z]
        if missing:
            raise ValueError(f"params has no entry for {[Element.from_Z(z).symbol for z in missing]}")
        table = by_z
    rm = np.array([table[z][0] for z in numbers.tolist()])
    eps = np.array([table[z][1] for z in numbers.tolist()])
    return rm, eps


def _switch(r: np.ndarray, r_on: np.ndarray, r_c: np.ndarray):
    """S, dS/dr, d²S/dr² of the quintic switch (C² at r_on and r_c)."""
    w = r_c - r_on
    x = np.clip((r - r_on) / w, 0.0, 1.0)
    s = 1.0 - x**3 * (10.0 - 15.0 * x + 6.0 * x**2)
    ds = -30.0 * x**2 * (1.0 - x) ** 2 / w
    d2s = -60.0 * x * (1.0 - x) * (1.0 - 2.0 * x) / w**2
    return s, ds, d2s


def _phi(r: np.ndarray, rm: np.ndarray, eps: np.ndarray, potential: str, alpha_rm: float):
    """φ, φ', φ'' (eV, eV/Å, eV/Å²) of the bare pair potential."""
    if potential == "lj":
        q6 = (rm / r) ** 6
        q12 = q6 * q6
        phi = eps * (q12 - 2.0 * q6)
        d1 = 12.0 * eps / r * (q6 - q12)
        d2 = eps / r**2 * (156.0 * q12 - 84.0 * q6)
        return phi, d1, d2
    a = alpha_rm / rm
    u = np.exp(-a * (r - rm))
    phi = eps * (u * u - 2.0 * u)
    d1 = 2.0 * a * eps * (u - u * u)
    d2 = 2.0 * a * a * eps * (2.0 * u * u - u)
    return phi, d1, d2


def _as_structure(structure: Any):
    if hasattr(structure, "lattice") and hasattr(structure, "frac_coords"):
        return structure
    return to_structure(structure)


def _pairs(structure: Any, potential: str, cutoff: float | None, switch_width: float | None,
           params: Any, alpha_rm: float, depth: float):
    """Ordered pairs within the cutoff: vectors (P,3) Å, φ_s' and φ_s'' and φ_s per pair."""
    if potential not in POTENTIALS:
        raise ValueError(f"unknown potential {potential!r}; choose one of {POTENTIALS}")
    s = _as_structure(structure)
    if not s.is_ordered:
        raise ValueError(f"{s.composition.reduced_formula}: partially occupied sites have no pair energy; "
                         f"order the structure first")
    numbers = np.asarray(s.atomic_numbers, dtype=np.int64)
    rm_i, eps_i = element_parameters(numbers, _DEFAULT_PARAMS[potential] if params is None else params, depth)
    if cutoff is not None and cutoff <= 0:
        raise ValueError(f"cutoff must be positive (Å), got {cutoff}")
    search = float(cutoff) if cutoff is not None else float(_CUTOFF_FACTOR[potential] * rm_i.max())
    lattice = np.asarray(s.lattice.matrix, dtype=np.float64)
    frac = np.asarray(s.frac_coords, dtype=np.float64)
    ci, nj, images, _ = s.get_neighbor_list(r=search, exclude_self=True)
    ci = np.asarray(ci, dtype=np.int64)
    nj = np.asarray(nj, dtype=np.int64)
    # Vectors from fractional coordinates and integer images: exact for exact input coordinates.
    vec = (frac[nj] + np.asarray(images, dtype=np.float64) - frac[ci]) @ lattice
    r = np.linalg.norm(vec, axis=1)
    if r.size and r.min() < MIN_DISTANCE:
        raise ValueError(f"{s.composition.reduced_formula}: atoms {int(ci[r.argmin()])} and {int(nj[r.argmin()])} "
                         f"are {r.min():.3f} Å apart (< {MIN_DISTANCE} Å); the structure overlaps")
    rm = 0.5 * (rm_i[ci] + rm_i[nj])
    eps = np.sqrt(eps_i[ci] * eps_i[nj])
    r_c = np.full_like(r, float(cutoff)) if cutoff is not None else _CUTOFF_FACTOR[potential] * rm
    width = (0.2 * r_c) if switch_width is None else np.full_like(r, float(switch_width))
    if np.any(width <= 0) or np.any(width > r_c):
        raise ValueError(f"switch_width must be in (0, cutoff], got {switch_width}")
    keep = r < r_c
    vec, r, rm, eps, r_c, width = vec[keep], r[keep], rm[keep], eps[keep], r_c[keep], width[keep]
    phi, d1, d2 = _phi(r, rm, eps, potential, alpha_rm)
    sw, dsw, d2sw = _switch(r, r_c - width, r_c)
    phi_s = phi * sw
    d1_s = d1 * sw + phi * dsw
    d2_s = d2 * sw + 2.0 * d1 * dsw + phi * d2sw
    return s, vec, r, phi_s, d1_s, d2_s


def born_elastic_tensor(structure: Any, potential: str = "morse", cutoff: float | None = None,
                        switch_width: float | None = None, params: Any = None, alpha_rm: float = 6.0,
                        depth: float = 1.0) -> np.ndarray:
    """(3, 3, 3, 3) Born (clamped-ion, Lagrangian-strain) elastic tensor in GPa; see the module docstring."""
    s, vec, r, _, d1, d2 = _pairs(structure, potential, cutoff, switch_width, params, alpha_rm, depth)
    w = (d2 - d1 / r) / r**2
    C = np.einsum("p,pa,pb,pc,pd->abcd", w, vec, vec, vec, vec, optimize=True)
    return C * (0.5 / s.volume) * EV_PER_A3_TO_GPA


def virial_stress(structure: Any, potential: str = "morse", cutoff: float | None = None,
                  switch_width: float | None = None, params: Any = None, alpha_rm: float = 6.0,
                  depth: float = 1.0) -> np.ndarray:
    """(3, 3) stress σ = (1/V) ∂E/∂η in GPa (positive = tensile: the cell would shrink if released)."""
    s, vec, r, _, d1, _ = _pairs(structure, potential, cutoff, switch_width, params, alpha_rm, depth)
    sigma = np.einsum("p,pa,pb->ab", d1 / r, vec, vec)
    return sigma * (0.5 / s.volume) * EV_PER_A3_TO_GPA


def pair_energy(structure: Any, potential: str = "morse", cutoff: float | None = None,
                switch_width: float | None = None, params: Any = None, alpha_rm: float = 6.0,
                depth: float = 1.0) -> float:
    """Total pair energy of the cell in eV (each unordered pair counted once)."""
    _, _, _, phi, _, _ = _pairs(structure, potential, cutoff, switch_width, params, alpha_rm, depth)
    return float(0.5 * phi.sum())


__all__ = ["EV_PER_A3_TO_GPA", "POTENTIALS", "UFF_PARAMS", "born_elastic_tensor", "element_parameters",
           "pair_energy", "virial_stress"]
