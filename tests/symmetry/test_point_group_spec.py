"""The feature-spec grammar "16xA1g + 8xEg + 8xT1u"."""
from __future__ import annotations

import pytest

from zoo.symmetry import point_group
from zoo.symmetry.groups import GIrreps, format_irreps, parse_irreps


def test_parse_format_roundtrip_and_dimensions():
    G = point_group("m-3m")
    spec = G.irreps_spec("16xA1g + 8xEg + 8xT1u")
    assert spec.terms == ((16, "A1g"), (8, "Eg"), (8, "T1u"))
    assert str(spec) == "16xA1g + 8xEg + 8xT1u"
    assert spec.dim == 16 + 8 * 2 + 8 * 3 and spec.num_irreps == 32
    assert parse_irreps(str(spec), "Oh") == spec
    # free whitespace, other multiplication signs, implicit multiplicity 1
    assert parse_irreps("  2 x T2u+Eg + 3*A2u + 4×A1g ", G).terms == ((2, "T2u"), (1, "Eg"), (3, "A2u"), (4, "A1g"))
    assert parse_irreps("", G).terms == () and parse_irreps("", G).dim == 0


def test_primes_simplify_and_sum():
    H = point_group("-6m2")
    spec = parse_irreps("2xE′ + A2'' + 3xE'", H)
    assert spec.terms == ((2, "E'"), (1, "A2''"), (3, "E'"))
    assert str(spec.simplify()) == "5xE' + 1xA2''"  # merged and in the group's irrep order
    assert (spec + parse_irreps("A1'", H)).terms[-1] == (1, "A1'")
    assert format_irreps([(2, "E′"), (1, "A1'")], H) == "2xE' + 1xA1'"


@pytest.mark.parametrize("bad", ["16xA1", "8xT1u + Eu2", "x8A1g", "8x", "A1g +", "-1xA1g", "8xT1u ++ Eg"])
def test_invalid_specs_raise(bad):
    with pytest.raises(ValueError):
        parse_irreps(bad, "m-3m")


def test_spec_is_bound_to_its_group():
    spec = parse_irreps("2xEg", "m-3m")
    with pytest.raises(ValueError):
        GIrreps.parse(spec, point_group("4/mmm"))
    with pytest.raises(ValueError):  # Eg exists in 4/mmm but T1u does not
        parse_irreps("Eg + T1u", "4/mmm")
    with pytest.raises(TypeError):
        parse_irreps(3, "m-3m")
