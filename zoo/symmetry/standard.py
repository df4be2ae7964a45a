"""Every crystal in the frame of one of two holohedries: spglib's standard setting, idealised.

Every crystallographic point group is, in its ITA standard orientation, a subgroup of m-3m (O_h:
triclinic to cubic, Cartesian axes along the conventional a, b, c) or of 6/mmm (D_6h: trigonal and
hexagonal, a along x, c along z; ``zoo.symmetry.groups`` uses the same orientations). A network that is
equivariant under the holohedry's operations in that frame therefore respects the crystal's own point
group exactly (Neumann's principle) once the crystal is rotated into it:

    r_std = R r        (Cartesian column vectors; R = ``StandardFrame.rotation``, orthogonal)

and a prediction made in the standard frame returns to the crystal's frame with Rᵀ on every index.

What spglib does here (``spglib.standardize_cell(to_primitive=True, no_idealize=False)`` and the
dataset's ``std_rotation_matrix``): it finds the symmetry within ``symprec`` (Å), chooses the standard
primitive cell and *idealises* it: lattice and positions are replaced by the exactly symmetric ones.
Consequences, each tested:

- the structure the network sees is exactly invariant under its point group (to float rounding), so
  the Neumann violation of a prediction is round-off, not a modelling error;
- a crystal rotated by any O(3) element gives the same standard cell up to an element of the
  holohedry (spglib's choice among equivalent orientations), to which the network is equivariant:
  the whole pipeline is O(3)-equivariant to round-off for crystals whose symmetry is found robustly;
- a crystal distorted by less than ``symprec`` is treated as the undistorted, more symmetric one (its
  prediction is that of the idealised structure), and one distorted by more loses the symmetry: the
  prediction jumps where the distortion crosses ``symprec``. Pick ``symprec`` to match the data's
  noise (relaxed DFT structures: 1e-3 to 1e-2 Å; MP's tensors were symmetrised at 0.1 Å).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HOLOHEDRIES = ("m-3m", "6/mmm")
DEFAULT_SYMPREC = 1e-3  # Å; spglib's distance tolerance


def holohedry_frame(spacegroup: int) -> str:
    """"6/mmm" for trigonal and hexagonal space groups (143-194), else "m-3m"."""
    if not 1 <= int(spacegroup) <= 230:
        raise ValueError(f"space group number must be 1-230, got {spacegroup}")
    return "6/mmm" if 143 <= int(spacegroup) <= 194 else "m-3m"


@dataclass(frozen=True)
class StandardFrame:
    """A crystal's idealised standard primitive cell and the rotation into its frame."""

    holohedry: str  # "m-3m" or "6/mmm": the group the network is equivariant under in this frame
    rotation: np.ndarray  # (3, 3) orthogonal, r_std = rotation @ r (may be improper? never: det +1)
    lattice: np.ndarray  # (3, 3) rows = standard primitive lattice vectors, Å, standard frame
    frac_coords: np.ndarray  # (n, 3)
    numbers: np.ndarray  # (n,) atomic numbers
    spacegroup: int
    point_group: str  # Hermann-Mauguin symbol, as spglib writes it
    symprec: float

    @property
    def cart_coords(self) -> np.ndarray:
        return self.frac_coords @ self.lattice

    def to_structure(self):
        from pymatgen.core import Lattice, Structure

        return Structure(Lattice(self.lattice), [int(z) for z in self.numbers], self.frac_coords)

    def tensor_to_input(self, T: np.ndarray, rank: int | None = None) -> np.ndarray:
        """A Cartesian tensor (..., 3, ..., 3) from the standard frame back to the crystal's frame."""
        from .neumann import rotate_tensor

        T = np.asarray(T, dtype=np.float64)
        rank = T.ndim if rank is None else rank
        if rank == 0:
            return T
        flat = T.reshape((-1,) + (3,) * rank)
        return np.stack([rotate_tensor(t, self.rotation.T) for t in flat]).reshape(T.shape)


def standardize(structure, symprec: float = DEFAULT_SYMPREC, angle_tolerance: float = -1.0) -> StandardFrame:
    """The crystal's idealised standard primitive cell in its holohedry's frame (see the module doc)."""
    import spglib

    lattice = np.asarray(structure.lattice.matrix, dtype=np.float64)
    cell = (lattice, np.asarray(structure.frac_coords, dtype=np.float64), np.asarray(structure.atomic_numbers, dtype=np.int64))
    ds = spglib.get_symmetry_dataset(cell, symprec=symprec, angle_tolerance=angle_tolerance)
    prim = spglib.standardize_cell(cell, to_primitive=True, no_idealize=False, symprec=symprec, angle_tolerance=angle_tolerance)
    if ds is None or prim is None:
        raise ValueError(f"spglib found no symmetry for {structure.composition.reduced_formula} at symprec {symprec} Å; "
                         "the structure is probably broken (overlapping atoms?)")
    R = np.asarray(ds.std_rotation_matrix, dtype=np.float64)
    # spglib's rotation is orthogonal to its own tolerance; snap it (polar decomposition) so that going
    # to the standard frame and back is exact to rounding.
    u, _, vt = np.linalg.svd(R)
    R = u @ vt
    if np.linalg.det(R) < 0:  # spglib returns proper rotations; an improper one would flip chirality
        raise RuntimeError("spglib returned an improper standardisation rotation")
    p_lattice, p_frac, p_numbers = prim
    return StandardFrame(
        holohedry=holohedry_frame(ds.number),
        rotation=R,
        lattice=np.asarray(p_lattice, dtype=np.float64),
        frac_coords=np.mod(np.asarray(p_frac, dtype=np.float64), 1.0),
        numbers=np.asarray(p_numbers, dtype=np.int64),
        spacegroup=int(ds.number),
        point_group=str(ds.pointgroup),
        symprec=float(symprec),
    )
