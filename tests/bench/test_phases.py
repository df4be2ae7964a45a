"""Where a bench row's time goes (``zoo.bench.phases``) and the symmetry checks that share one compiled
model per dtype between the equivariance and the parity figures (``zoo.bench.run``)."""
from __future__ import annotations

import pytest

from zoo.bench import measure, phases, run, table


def test_phases_add_wall_cpu_and_compilations_per_phase():
    jax = pytest.importorskip("jax")
    p = phases.Phases()
    phases.watch_jax()
    with p("work"):
        sum(i * i for i in range(300_000))  # CPU, no compilation
    with p("compile"):
        jax.jit(lambda x: x * 3.0 + 1.0)(jax.numpy.ones(7)).block_until_ready()
    with p("work"):  # a phase that runs twice adds up
        sum(i * i for i in range(300_000))
    start = p.mark()
    end = p.mark()
    p.between("split", start, end)
    work, comp = p.table["work"], p.table["compile"]
    assert work["wall_s"] > 0 and work["cpu_s"] > 0 and work["compiles"] == 0
    assert comp["compiles"] >= 1 and comp["compile_s"] > 0
    assert set(p.table) == {"work", "compile", "split"}
    md = table.phase_table([{"model": "cgcnn", "backend": "jax", "wall_s": 3.0,
                             "phases": {"training": {"wall_s": 2.0, "cpu_s": 3.5, "compiles": 4, "compile_s": 1.0}}}],
                           {"data": {"wall_s": 9.0, "cpu_s": 17.0, "compiles": 0, "compile_s": 0.0}})
    assert "| cgcnn | jax | 2.0 / 3.5 / 4 |" in md and "| data | (both tasks) | 9.0 / 17.0 / 0 |" in md


def test_shared_check_weights_give_parity_from_the_equivariance_outputs():
    pytest.importorskip("jax")
    pytest.importorskip("torch")
    config = measure.model_config("cgcnn", n_conv=1, atom_fea_len=8, h_fea_len=16)
    outputs: dict = {}
    p = phases.Phases()
    for backend in ("torch", "jax"):
        figures = run.symmetry_figures("cgcnn", backend, config, p, outputs)
        assert figures["equivariance_f64"] < 1e-12 and figures["equivariance_f32"] < 1e-5
    parity = run.parity_figures("cgcnn", config, p, outputs, pending=False)
    # same weights in both backends (torch's seeded init): round-off, where different weights give O(1)
    assert parity["parity_f64"] < 1e-12 and parity["parity_f32"] < 1e-5
    assert set(p.table) == {"equivariance_f64", "equivariance_f32", "parity"} and p.table["parity"]["compiles"] == 0
    assert run.parity_figures("cgcnn", config, p, {}, pending=True) == {}  # the family's other row comes later
