"""Cross-check against multipie's point-group tables (an independent package; skipped without it).

multipie 2.4 needs Python >= 3.12 and multipie 2.3.4's ``multipie.core`` does not import on Python
3.11 (a 3.12-only f-string), so only its pickled tables are read, through
``multipie.util.util_binary.BinaryManager``. They give Cartesian operations in ITA's standard
settings, character tables with Mulliken labels, and O_h's product table.
"""
from __future__ import annotations

import numpy as np
import pytest

from zoo.symmetry import POINT_GROUPS, point_group


def _manager():
    mod = pytest.importorskip("multipie.util.util_binary", reason="multipie is not installed")
    try:
        info = mod.BinaryManager("info")
    except Exception as exc:  # noqa: BLE001  (a broken data install is a skip, not a failure)
        pytest.skip(f"multipie tables not readable: {exc}")
    return mod.BinaryManager, info


def _check_group(BinaryManager, info, hm):
    G = point_group(hm)
    tag = next(k for k, v in info["tag"].items() if v == G.schoenflies and k.startswith("PG:"))
    data = BinaryManager(f"PG/{tag}")
    cart = np.array(data["symmetry_operation"]["cartesian"].tolist(), dtype=float)
    idx = G.indices(cart)  # same operations (same orientation) or KeyError
    assert sorted(idx) == list(range(G.order))
    table = data["character"]["table_full"]
    # same labels; same order too, except that multipie lists A1' A2' A1'' A2'' E' E'' where we
    # (and Cotton) list A1' A2' E' A1'' A2'' E''
    assert sorted(table) == sorted(G.irreps)
    if "'" not in "".join(G.irreps):
        assert list(table) == G.irreps
    for lab, row in table.items():
        row = np.array([complex(x) for x in row])
        np.testing.assert_allclose(row.imag, 0, atol=1e-12)
        np.testing.assert_allclose(G.character(lab)[idx], row.real, atol=1e-12)
    return data


def test_oh_against_multipie():
    BinaryManager, info = _manager()
    data = _check_group(BinaryManager, info, "m-3m")
    # O_h products: multipie lists the symmetric part for a ⊗ a (antisymmetric part apart)
    G = point_group("m-3m")
    sym, anti = data["character"]["symmetric_product"], data["character"]["anti_symmetric_product"]
    for (a, b), terms in sym.items():
        want = {lab: m for m, lab in terms}
        if a == b:
            for m, lab in anti[a]:
                want[lab] = want.get(lab, 0) + m
        assert G.product(a, b) == {lab: want[lab] for lab in G.irreps if lab in want}


@pytest.mark.slow
@pytest.mark.parametrize("hm", POINT_GROUPS)
def test_every_group_against_multipie(hm):
    BinaryManager, info = _manager()
    _check_group(BinaryManager, info, hm)
