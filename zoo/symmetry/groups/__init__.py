"""The 32 crystallographic point groups: real irreps, characters, couplings, O(3) subduction.

Backend-neutral (numpy; spgrep for the irreps; e3nn or e3nn-jax only, lazily, for the Wigner
matrices of the subduction). Conventions, orientation of every group and the validation are in
docs/point_groups.md.

>>> G = point_group("m-3m")          # or "Oh"
>>> G.irreps[:3], G.product("T1u", "T1u")
(['A1g', 'A2g', 'Eg'], {'A1g': 1, 'Eg': 1, 'T1g': 1, 'T2g': 1})
"""
from __future__ import annotations

import functools

from .catalog import POINT_GROUPS, resolve_name
from .group import PointGroup
from .spec import GIrreps, format_irreps, parse_irreps

__all__ = ["POINT_GROUPS", "PointGroup", "point_group", "GIrreps", "parse_irreps", "format_irreps"]


@functools.lru_cache(maxsize=None)
def _point_group(hm: str) -> PointGroup:
    return PointGroup(hm)


def point_group(name: str) -> PointGroup:
    """The point group named by its HM symbol (any of ``POINT_GROUPS``) or Schoenflies name.

    Cached: every spelling of one group returns the same object (tables computed once).
    """
    if isinstance(name, PointGroup):
        return name
    return _point_group(resolve_name(name))
