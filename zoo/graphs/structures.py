"""Reading and validating crystal structures before they become graphs.

``to_structure`` accepts a pymatgen ``Structure`` (or its ``as_dict()``), an ASE ``Atoms``, a CIF
file path or CIF text, and returns a pymatgen ``Structure`` that is safe to featurise, or raises
``StructureError`` naming the structure and saying how to fix it. Checks, in order:

1. the input can be read (CIF parses, the type is supported, ASE cells are periodic in 3D); a dict
   (``Structure.as_dict()``) may name only the classes of ``STRUCTURE_CLASSES`` (``zoo.core.safejson``:
   pymatgen's own decoder would import any module a dict names);
2. the cell is a real 3D cell: finite, |det| >= 1e-6 Å³, and not flattened (the volume is at least
   1e-6 of |a||b||c|, i.e. the lattice vectors are not (nearly) coplanar). A flatter basis is refused;
   any basis above that is searched in its LLL-reduced form (``zoo.graphs.neighbors``), so its cost
   does not grow with the skew;
3. every coordinate is finite and within 1e8 Å of the origin (coordinates need not be wrapped into
   the cell; beyond 1e8 Å float64 keeps too few digits for an edge vector);
4. every site is ordered (one species, occupancy 1) and is a real element with 1 <= Z <= 100 (the
   range of the atom feature tables; no ``DummySpecies``, no vacancies);
5. no two sites closer than ``min_distance`` (0.5 Å by default), periodic images included (an atom
   closer than that to its own image means a lattice vector is too short).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from zoo.core.safejson import UnsafeDataError, check_classes

from .features import N_ELEMENTS
from .neighbors import MAX_COORDINATE, NeighborListTooLarge, neighbor_list

MIN_DISTANCE = 0.5  # Å; closer sites are almost surely duplicated atoms (shortest real bond: H2, 0.74 Å)
MIN_VOLUME = 1e-6  # Å³
MIN_FLATNESS = 1e-6  # |det| / (|a||b||c|): 1 for an orthogonal cell, 0 for coplanar lattice vectors


# The classes a structure dict may name (as ``Structure.as_dict()`` writes them; numpy arrays appear in
# site properties such as magnetic moments written by monty's encoder). Nothing else is decoded.
STRUCTURE_CLASSES = {
    "pymatgen.core.structure": ("Structure", "IStructure"),
    "pymatgen.core.lattice": ("Lattice",),
    "pymatgen.core.sites": ("PeriodicSite", "Site"),
    "pymatgen.core.periodic_table": ("Element", "Species", "DummySpecies"),
    "numpy": ("array",),
}


class StructureError(ValueError):
    """A structure that cannot be turned into a crystal graph; the message names it and the fix."""


def structure_from_dict(d: dict, source: str = "<dict>", checked: bool = False):
    """``Structure.from_dict(d)`` once ``d`` is checked to name only ``STRUCTURE_CLASSES`` (else
    ``zoo.core.safejson.UnsafeDataError`` naming ``source``): the way every data file's structures are
    read. ``checked``: the caller already checked the whole file (``zoo.core.safejson.object_hook``)."""
    from pymatgen.core import IStructure, Structure

    if not isinstance(d, dict):
        raise ValueError(f"{source}: expected a structure dict (Structure.as_dict()), got {type(d).__name__}")
    if not checked:
        check_classes(d, STRUCTURE_CLASSES, source)
    if d.get("@class") == "IStructure":
        return IStructure.from_dict(d)
    return Structure.from_dict(d)


def _name(id: str, fallback: str = "") -> str:
    return repr(id) if id else (fallback or "<unnamed>")


def formula(structure) -> str:
    """Alphabetical formula from the site labels (no element-data lookup, works on any site)."""
    from collections import Counter

    counts = Counter(site.species_string for site in structure)
    return "".join(f"{k}{v if v > 1 else ''}" for k, v in sorted(counts.items())) or "<empty>"


def _looks_like_cif_text(text: str) -> bool:
    return "\n" in text and ("data_" in text or "_cell_length_a" in text)


def _from_cif(text: str, source: str, id: str):
    from pymatgen.io.cif import CifParser

    name = _name(id, source)
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pymatgen warns about every rounding it does in a CIF
            structures = CifParser.from_str(text).parse_structures(primitive=False, on_error="raise")
    except Exception as exc:  # pymatgen raises ValueError/KeyError/... for malformed CIFs
        raise StructureError(
            f"structure {name}: cannot read CIF ({type(exc).__name__}: {exc}); check that the file is a valid "
            "CIF with _cell_length_*/_cell_angle_* and _atom_site_fract_* (or symmetry) entries"
        ) from exc
    if len(structures) != 1:
        raise StructureError(
            f"structure {name}: CIF holds {len(structures)} structures (data blocks); pass one structure per CIF"
        )
    return structures[0]


def _read(obj: Any, id: str):
    from pymatgen.core import IStructure, Structure

    if isinstance(obj, (Structure, IStructure)):
        return obj
    if isinstance(obj, dict):
        try:
            return structure_from_dict(obj, source=f"structure {_name(id)}")
        except UnsafeDataError as exc:
            raise StructureError(str(exc)) from None
        except Exception as exc:
            raise StructureError(
                f"structure {_name(id)}: dict is not a pymatgen Structure.as_dict() ({type(exc).__name__}: {exc})"
            ) from exc
    try:
        from ase import Atoms
    except ImportError:  # pragma: no cover - ase is a dependency
        Atoms = ()
    if Atoms and isinstance(obj, Atoms):
        if not np.all(obj.pbc):
            raise StructureError(
                f"structure {_name(id, obj.get_chemical_formula())}: ASE Atoms with pbc={obj.pbc.tolist()}; "
                "crystal graphs are periodic in all three directions: set atoms.pbc = True and give "
                "non-periodic directions a cell with vacuum wider than the graph radius"
            )
        from pymatgen.io.ase import AseAtomsAdaptor

        try:
            return AseAtomsAdaptor.get_structure(obj)
        except np.linalg.LinAlgError as exc:
            raise StructureError(
                f"structure {_name(id, obj.get_chemical_formula())}: the ASE cell {obj.cell.array.tolist()} is "
                "singular (zero volume); set a full 3D cell with atoms.set_cell(...)"
            ) from exc
    if isinstance(obj, (str, os.PathLike)):
        if isinstance(obj, str) and _looks_like_cif_text(obj):
            return _from_cif(obj, "<CIF text>", id)
        path = Path(obj)
        if path.is_file():
            try:
                text = path.read_text()
            except (OSError, UnicodeDecodeError) as exc:
                raise StructureError(f"structure {_name(id, str(path))}: cannot read {path} ({exc})") from exc
            return _from_cif(text, str(path), id)
        raise StructureError(
            f"structure {_name(id)}: {str(obj)[:80]!r} is neither an existing CIF file nor CIF text; "
            "pass a path to a .cif file, the CIF contents, a pymatgen Structure or an ASE Atoms"
        )
    raise StructureError(
        f"structure {_name(id)}: unsupported input type {type(obj).__name__}; "
        "pass a pymatgen Structure (or its as_dict()), an ASE Atoms, a CIF path or CIF text"
    )


def check_lattice(lattice: np.ndarray, name: str) -> None:
    L = np.asarray(lattice, dtype=np.float64)
    if L.shape != (3, 3) or not np.all(np.isfinite(L)):
        raise StructureError(f"structure {name}: lattice has non-finite entries {L.tolist()}; fix the cell parameters")
    volume = abs(float(np.linalg.det(L)))
    lengths = np.linalg.norm(L, axis=1)
    if volume < MIN_VOLUME:
        raise StructureError(
            f"structure {name}: cell volume {volume:.3g} Å³ is (near) zero (lattice {L.tolist()}); "
            "give a 3D cell (for a slab or molecule add vacuum along the missing direction)"
        )
    if volume < MIN_FLATNESS * float(np.prod(lengths)):
        raise StructureError(
            f"structure {name}: degenerate lattice, the vectors are (nearly) coplanar "
            f"(volume {volume:.3g} Å³ for lengths {np.round(lengths, 4).tolist()} Å); fix the cell parameters, or "
            "if the lattice is right but its basis skewed, pass its reduced form (Structure.get_reduced_structure())"
        )


def check_coordinates(structure, name: str) -> None:
    """Every site's Cartesian coordinates finite and within ``MAX_COORDINATE`` Å (see the module docstring)."""
    cart = np.asarray(structure.cart_coords, dtype=np.float64).reshape(-1, 3)
    bad = np.flatnonzero(~np.isfinite(cart).all(axis=1))
    if bad.size:
        k = int(bad[0])
        raise StructureError(
            f"structure {name}: site {k} ({structure[k].species_string}) has non-finite coordinates "
            f"{cart[k].tolist()} ({bad.size} site(s) with NaN or inf); fix or drop the structure"
        )
    far = float(np.abs(cart).max(initial=0.0))
    if far > MAX_COORDINATE:
        raise StructureError(
            f"structure {name}: a coordinate is {far:.3g} Å from the origin (limit {MAX_COORDINATE:g} Å, beyond "
            "which float64 cannot resolve bond vectors); wrap the sites into the cell (e.g. build it with Structure(..., to_unit_cell=True))"
        )


def check_species(structure, name: str) -> np.ndarray:
    """Atomic numbers of an ordered structure of real elements 1..100, else StructureError."""
    from pymatgen.core import DummySpecies, Element, Species

    numbers = np.empty(len(structure), dtype=np.int64)
    for k, site in enumerate(structure):
        if not site.is_ordered:
            raise StructureError(
                f"structure {name}: site {k} is disordered / partially occupied ({site.species}); graphs need "
                "ordered structures: pick an ordering (e.g. pymatgen OrderDisorderedStructureTransformation) "
                "or drop the structure"
            )
        sp = site.specie
        if isinstance(sp, DummySpecies) or not isinstance(sp, (Element, Species)):  # DummySpecies ⊂ Species
            raise StructureError(
                f"structure {name}: site {k} holds {sp!r}, which is not a chemical element (dummy species); "
                "replace it by a real element"
            )
        Z = int(sp.Z)
        if not 1 <= Z <= N_ELEMENTS:
            raise StructureError(
                f"structure {name}: site {k} is {sp} (Z={Z}), outside the supported elements Z=1..{N_ELEMENTS} "
                "(the atom feature tables stop at Fm); remove the structure from the data set"
            )
        numbers[k] = Z
    return numbers


def check_overlaps(lattice: np.ndarray, positions: np.ndarray, name: str, min_distance: float = MIN_DISTANCE) -> None:
    if min_distance is None or min_distance <= 0 or len(positions) == 0:
        return
    try:
        i, j, shifts, _, d = neighbor_list(lattice, positions, min_distance)
    except NeighborListTooLarge as exc:
        raise StructureError(f"structure {name}: the overlap check cannot run: {exc}") from None
    close = d < min_distance
    if np.any(close):
        k = int(np.argmin(np.where(close, d, np.inf)))
        a, b, s = int(i[k]), int(j[k]), shifts[k].tolist()
        what = (
            f"atom {a} is {d[k]:.3g} Å from its own periodic image {s}: a lattice vector is too short"
            if a == b
            else f"atoms {a} and {b} (image {s}) are {d[k]:.3g} Å apart"
        )
        raise StructureError(
            f"structure {name}: overlapping atoms, {what} (minimum {min_distance} Å); remove duplicated sites "
            "(e.g. Structure.merge_sites(tol=0.5, mode='delete')) or fix the cell, or lower min_distance "
            "if this is intended"
        )


def screen(obj: Any) -> tuple | None:
    """``(lattice, positions, frac_coords, numbers)`` of a pymatgen ``Structure`` that passes the per-site
    checks of ``to_structure`` (sites present, periodic, ordered, real elements 1..100), read in one pass
    over its sites; None for anything else (another input type, or a structure one of these checks would
    refuse), which must then go through ``to_structure`` for its verdict and message. The cell, coordinate
    and overlap checks are left to the caller (``zoo.graphs.builder`` runs them on many structures at once)."""
    from pymatgen.core import Element, IStructure, Species, Structure

    if not isinstance(obj, (Structure, IStructure)):
        return None
    sites = obj.sites
    if not sites or not all(getattr(obj.lattice, "pbc", (True, True, True))):
        return None
    numbers = []
    for site in sites:
        species = site.species
        if len(species) != 1:
            return None
        ((sp, occupancy),) = species.items()
        # exact types: DummySpecies (a Species subclass) and anything else take the full check
        if occupancy != 1 or (type(sp) is not Element and type(sp) is not Species):
            return None
        Z = sp.Z
        if not 1 <= Z <= N_ELEMENTS:
            return None
        numbers.append(Z)
    positions = np.array([site.coords for site in sites], dtype=np.float64)  # as Structure.cart_coords
    frac = np.array([site.frac_coords for site in sites], dtype=np.float64)  # as Structure.frac_coords
    # copies, as to_structure's path makes: a graph never shares memory with the Structure it came from
    return np.array(obj.lattice.matrix, dtype=np.float64), positions, frac, np.array(numbers, dtype=np.int64)


def to_structure(obj: Any, id: str = "", min_distance: float | None = MIN_DISTANCE):
    """A validated pymatgen ``Structure`` from a Structure/dict, ASE Atoms, CIF path or CIF text.

    Raises ``StructureError`` (a ``ValueError``) naming ``id`` and the fix; see the module docstring
    for the checks. ``min_distance`` (Å) is the overlap threshold; ``None`` or 0 disables it.
    """
    structure = _read(obj, id)
    name = repr(id) if id else formula(structure)
    if len(structure) == 0:
        raise StructureError(f"structure {name}: has no sites; drop it from the data set")
    pbc = getattr(structure.lattice, "pbc", (True, True, True))
    if not all(pbc):
        raise StructureError(
            f"structure {name}: lattice pbc={tuple(bool(p) for p in pbc)}; crystal graphs are periodic in all three "
            "directions: build the Structure with pbc=(True, True, True) and vacuum wider than the graph radius"
        )
    lattice = structure.lattice.matrix
    check_lattice(lattice, name)
    check_coordinates(structure, name)
    check_species(structure, name)
    check_overlaps(lattice, structure.cart_coords, name, min_distance)
    return structure
