"""Random crystal generator: determinism, coverage of crystal systems / point groups, exact symmetry."""
from __future__ import annotations

import numpy as np
import pytest
import spglib
from pymatgen.analysis.molecule_structure_comparator import CovalentRadius

from zoo.tasks.embedded.dielectric import POLARIZABILITY
from zoo.tasks.embedded.generator import DEFAULT_ELEMENTS, crystal_system_of, generate_crystals

SYSTEMS = {"triclinic", "monoclinic", "orthorhombic", "tetragonal", "trigonal", "hexagonal", "cubic"}


@pytest.fixture(scope="module")
def crystals():
    return generate_crystals(400, 0, progress=False)


def _same(a, b):
    sa, sb = a.structure, b.structure
    return (a.id == b.id and a.spacegroup == b.spacegroup and sa.species == sb.species
            and np.array_equal(sa.lattice.matrix, sb.lattice.matrix) and np.array_equal(sa.frac_coords, sb.frac_coords))


def test_deterministic_and_prefix_stable():
    a = generate_crystals(12, 7, progress=False)
    b = generate_crystals(12, 7, progress=False)
    assert all(_same(x, y) for x, y in zip(a, b))
    # crystal k does not depend on n
    c = generate_crystals(5, 7, progress=False)
    assert all(_same(x, y) for x, y in zip(c, a[:5]))
    # another seed gives other crystals (and other ids)
    d = generate_crystals(5, 8, progress=False)
    assert not any(np.array_equal(x.structure.frac_coords, y.structure.frac_coords) for x, y in zip(c, d) if len(x.structure) == len(y.structure))
    assert [x.id for x in a] == [f"gen7-{k:05d}" for k in range(12)]


def test_coverage(crystals):
    systems = {c.crystal_system for c in crystals}
    point_groups = {c.point_group for c in crystals}
    assert systems == SYSTEMS
    assert len(point_groups) >= 25, sorted(point_groups)
    assert len({c.spacegroup for c in crystals}) >= 100
    assert len({c.id for c in crystals}) == len(crystals)


def test_small_cells_and_known_elements(crystals):
    for c in crystals:
        assert 1 <= len(c.structure) <= 24, c.id
        els = {sp.symbol for sp in c.structure.species}
        assert 1 <= len(els) <= 3
        assert els <= set(DEFAULT_ELEMENTS) <= set(POLARIZABILITY)
        assert c.crystal_system == crystal_system_of(c.spacegroup)


def test_exact_symmetry(crystals):
    """spglib finds the stored space group at symprec 1e-5, and every operation it returns maps the
    structure onto itself to 1e-9 in fractional coordinates: no rounding anywhere in the generator."""
    for c in crystals[:150]:
        s = c.structure
        cell = (s.lattice.matrix, s.frac_coords, s.atomic_numbers)
        ds = spglib.get_symmetry_dataset(cell, symprec=1e-5)
        assert ds.number == c.spacegroup, c.id
        assert ds.pointgroup == c.point_group, c.id
        # no accidental higher symmetry at a loose tolerance either
        assert spglib.get_symmetry_dataset(cell, symprec=1e-2).number == c.spacegroup, c.id
        frac = s.frac_coords
        z = np.asarray(s.atomic_numbers)
        for W, t in zip(ds.rotations, ds.translations):
            img = frac @ W.T + t
            d = img[:, None, :] - frac[None, :, :]
            d -= np.round(d)
            err = np.abs(d).max(axis=2)
            err[z[:, None] != z[None, :]] = np.inf
            assert err.min(axis=1).max() < 1e-9, c.id


def test_minimum_distances(crystals):
    """No two atoms (periodic images included) closer than 0.9 × the sum of their covalent radii."""
    for c in crystals[:150]:
        s = c.structure
        rad = np.array([CovalentRadius.radius[sp.symbol] for sp in s.species])
        centre, neigh, _, dist = s.get_neighbor_list(2.0 * rad.max())
        if len(dist):
            assert (dist / (rad[centre] + rad[neigh])).min() >= 0.9 - 1e-12, c.id


def test_bad_arguments():
    with pytest.raises(ValueError, match="no tabulated polarisability"):
        generate_crystals(1, 0, elements=("Si", "U"), progress=False)
    with pytest.raises(ValueError, match="n must be >= 0"):
        generate_crystals(-1, 0, progress=False)
    with pytest.raises(ValueError, match="1..230"):
        crystal_system_of(231)
    only = generate_crystals(5, 3, elements=("Si", "O"), progress=False)
    assert all({sp.symbol for sp in c.structure.species} <= {"Si", "O"} for c in only)
