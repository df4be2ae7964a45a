"""Standard frames (zoo.symmetry.standard): idealised, exactly symmetric, inside the holohedry, and the
same for a rotated copy of the crystal up to an element of the holohedry."""
from __future__ import annotations

import numpy as np
import pytest

from zoo.symmetry import cartesian_point_group, point_group, rotate_tensor
from zoo.symmetry.standard import holohedry_frame, standardize
from zoo.testing import random_crystals, random_rotation, transform_structure

SYSTEMS = ("triclinic", "monoclinic", "orthorhombic", "tetragonal", "trigonal", "hexagonal", "cubic")


@pytest.fixture(scope="module")
def crystals():
    from zoo.tasks.embedded.generator import generate_crystals

    out = {}
    for c in generate_crystals(120, seed=3, max_atoms=10, progress=False):
        out.setdefault(c.crystal_system, c.structure)
    assert set(out) == set(SYSTEMS)
    return out


def test_holohedry_of_every_space_group():
    assert [holohedry_frame(n) for n in (1, 142, 143, 194, 195, 230)] == ["m-3m", "m-3m", "6/mmm", "6/mmm", "m-3m", "m-3m"]
    with pytest.raises(ValueError):
        holohedry_frame(231)


@pytest.mark.parametrize("system", SYSTEMS)
def test_standard_cell_is_exactly_symmetric_and_inside_its_holohedry(crystals, system):
    s = crystals[system]
    f = standardize(s)
    assert f.holohedry == ("6/mmm" if system in ("trigonal", "hexagonal") else "m-3m")
    std = f.to_structure()
    ops = cartesian_point_group(std, symprec=1e-3)
    # idealised: the same operations hold at a tolerance 1e5 times tighter
    assert len(cartesian_point_group(std, symprec=1e-8)) == len(ops) == len(cartesian_point_group(s, symprec=1e-3))
    H = point_group(f.holohedry)
    assert all(H.contains(R) for R in ops), f"{system}: the crystal's operations are not in {f.holohedry}'s frame"
    assert np.allclose(f.rotation @ f.rotation.T, np.eye(3), atol=1e-14) and np.linalg.det(f.rotation) > 0


@pytest.mark.parametrize("system", SYSTEMS)
def test_rotated_crystal_gives_the_same_frame_up_to_the_holohedry(crystals, system):
    s = crystals[system]
    f = standardize(s)
    H = point_group(f.holohedry)
    for seed in range(3):
        Q = random_rotation(seed, improper=None)
        g = standardize(transform_structure(s, R=Q, t=np.array([0.3, -0.1, 0.2])))
        # g.rotation @ Q maps the original frame to the new standard frame; composed with f's inverse it
        # must be an operation of the holohedry (spglib chose an equivalent orientation)
        h = g.rotation @ Q @ f.rotation.T
        assert H.contains(h), f"{system}: orientation differs by a non-holohedry rotation\n{np.round(h, 6)}"
        assert np.allclose(np.sort(np.linalg.norm(g.lattice, axis=1)), np.sort(np.linalg.norm(f.lattice, axis=1)), atol=1e-9)


def test_tensor_back_to_the_input_frame():
    s = random_crystals(1, seed=5)[0]
    Q = random_rotation(1)
    f = standardize(transform_structure(s, R=Q))
    T = np.random.default_rng(0).normal(size=(2, 3, 3, 3))
    back = f.tensor_to_input(T, rank=3)
    np.testing.assert_allclose(rotate_tensor(back[1], f.rotation), T[1], atol=1e-13)
