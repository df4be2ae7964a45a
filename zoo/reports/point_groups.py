"""Validation table, subduction tables, worked example and timings of the point-group machinery (zoo.symmetry.groups).

    zoo report point_groups [--out results/point_groups] [--repeats 3] [--no-timings]

writes ``validation.json`` (all numbers, machine and load) and ``README.md`` (the same as tables)
atomically. docs/point_groups.md quotes these tables.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from zoo.core.io import write_json, write_text
from zoo.core.provenance import machine, package_versions
from zoo.symmetry.groups import POINT_GROUPS, point_group
from zoo.symmetry.groups.validate import validate_couplings, validate_subduction

CHECKS = ("a", "b", "c", "d")


def machine_info() -> dict:
    info = machine()
    info["versions"] = package_versions(("numpy", "spgrep", "spglib", "torch", "e3nn", "jax", "e3nn-jax"))
    return info


def fmt_decomposition(mults: dict[str, int]) -> str:
    return " + ".join(f"{m}{lab}" if m > 1 else lab for lab, m in mults.items())


def subduction_table(hm: str, lmax: int = 6) -> dict[str, dict[str, str]]:
    """{l: {"+": "A1g + T1g", "-": ...}} from characters (the subduction matrices are validated)."""
    G = point_group(hm)
    return {str(l): {("+" if p == 1 else "-"): fmt_decomposition(G.subduction_multiplicities(l, p)) for p in (1, -1)}
            for l in range(lmax + 1)}


def worked_example() -> dict:
    """O_h, T1u ⊗ T1u: product, and for each channel the Dirl triple, bracket and coefficients."""
    from zoo.symmetry.groups.coupling import invariant_projector, kron_rep, _pick

    G = point_group("m-3m")
    Ga = np.asarray(G.matrices("T1u"))
    out = {"product": G.product("T1u", "T1u"), "channels": {}}
    for c in out["product"]:
        Gc = np.asarray(G.matrices(c))
        P = invariant_projector(kron_rep(Ga, Ga), Gc)
        diag = np.diag(P)
        k = _pick(diag)
        q, s, a = np.unravel_index(k, (3, 3, Gc.shape[1]))
        C = np.asarray(G.coupling("T1u", "T1u", c))[0]
        nz = [[int(i), int(j), int(n), round(float(C[i, j, n]), 12)] for i, j, n in zip(*np.nonzero(np.abs(C) > 1e-12))]
        out["channels"][c] = {"triple_qsa": [int(q), int(s), int(a)], "bracket": float(diag[k]),
                              "n_vanishing_brackets": int((diag < 1e-14).sum()), "n_brackets": int(diag.size),
                              "nonzero_coefficients_ijn": nz}
    out["T1u_generators"] = {"4z": np.round(Ga[G.index([[0, -1, 0], [1, 0, 0], [0, 0, 1]])], 12).tolist(),
                             "3[111]": np.round(Ga[G.index([[0, 0, 1], [1, 0, 0], [0, 1, 0]])], 12).tolist()}
    return out


def validation_rows(stress_seed: int = 0, lmax: int = 6, groups=POINT_GROUPS) -> list[dict]:
    rows = []
    for hm in groups:
        G = point_group(hm)
        v = validate_couplings(G)
        s = validate_couplings(G, conjugate_seed=stress_seed)
        u = validate_subduction(G, lmax=lmax)
        rows.append({
            "group": hm, "schoenflies": G.schoenflies, "order": G.order, "irreps": G.irreps,
            "merged_pairs": [lab for lab in G.irreps if G.indicator(lab) == 0],
            "n_triples": v["n_triples"], "n_nonzero": v["n_nonzero"], "n_mult2": v["n_mult2"],
            "n_pair_channels": v["n_pair"], "max_mult": v["max_mult"],
            "coupling": {k: v[k] for k in CHECKS}, "dim_failures": v["dimsum_fail"] + v["dim_fail"],
            "stress": {**{k: s[k] for k in CHECKS}, "transform": s["conj"],
                       "dim_failures": s["dimsum_fail"] + s["dim_fail"]},
            "subduction": {**{k: u[k] for k in CHECKS}, "e3nn_trace_vs_formula": u["chi"],
                           "dim_failures": u["dimsum_fail"], "n_mult2": u["n_mult2"]},
        })
    return rows


_TIMING_CODE = """
import sys, time, json
t0 = time.perf_counter()
from zoo.symmetry.groups import point_group, POINT_GROUPS
t1 = time.perf_counter()
groups = POINT_GROUPS if sys.argv[1] == 'all' else [sys.argv[1]]
for hm in groups:
    point_group(hm).build_tables(subduction=False)
t2 = time.perf_counter()
try:
    import torch, e3nn  # noqa: F401  (timed apart: it dominates and is paid once per process)
except ImportError:
    pass
t2b = time.perf_counter()
for hm in groups:
    point_group(hm).build_tables(subduction=True)
t3 = time.perf_counter()
for hm in groups:
    point_group(hm).build_tables(subduction=True)
t4 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "irreps_and_couplings_s": t2 - t1, "torch_e3nn_import_s": t2b - t2,
                  "subduction_l6_s": t3 - t2b, "cached_rebuild_s": t4 - t3}))
"""


def cold_timings(repeats: int = 3) -> dict:
    """Each measurement in a fresh interpreter (cold caches): O_h alone and all 32 groups."""
    import json

    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    out = {"load_before": list(os.getloadavg())}
    for which in ("m-3m", "all"):
        runs = []
        for _ in range(repeats):
            res = subprocess.run([sys.executable, "-c", _TIMING_CODE, which], capture_output=True, text=True,
                                 env=env, timeout=900, check=True)
            runs.append(json.loads(res.stdout.strip().splitlines()[-1]))
        out["Oh" if which == "m-3m" else "all_32"] = {
            k: {"median": statistics.median(r[k] for r in runs), "min": min(r[k] for r in runs)} for k in runs[0]}
        out["Oh" if which == "m-3m" else "all_32"]["runs"] = runs
    out["load_after"] = list(os.getloadavg())
    out["note"] = ("fresh process each; import_s: zoo.symmetry.groups; irreps_and_couplings_s: spgrep irreps, "
                   "labels and every coupling of every ordered triple; torch_e3nn_import_s: importing torch + e3nn; "
                   "subduction_l6_s: e3nn Wigner matrices of m-3m and 6/mmm for l <= 6 and all subduction matrices "
                   "(l <= 6, both parities); cached_rebuild_s: a second pass over the lru caches")
    return out


def _e(x: float) -> str:
    return f"{x:.1e}"


def render_markdown(data: dict) -> str:
    rows = data["validation"]
    lines = ["# Point-group machinery: validation, subduction tables, timings", "",
             "Generated by `zoo report point_groups` (see docs/point_groups.md). Errors are",
             "max-abs in float64. (a) integrality of <χαχβ,χγ>/<χγ,χγ>; (b) intertwining for every g;",
             "(c) UᵀU = I; (d) span vs the null space of the projector and vs the character projector;",
             "stress: every irrep conjugated by a random orthogonal matrix (max over a-d and the",
             "transformation of the isotypic projectors); subduction: l <= 6, both parities, max over a-d.", "",
             "| group | | order | triples | m>=1 | m>=2 | pair-γ | (a) | (b) | (c) | (d) | stress | subduction | e3nn χ |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        st = max(max(r["stress"][k] for k in CHECKS), r["stress"]["transform"])
        su = max(r["subduction"][k] for k in CHECKS)
        lines.append(f"| {r['group']} | {r['schoenflies']} | {r['order']} | {r['n_triples']} | {r['n_nonzero']} | "
                     f"{r['n_mult2']} | {r['n_pair_channels']} | {_e(r['coupling']['a'])} | {_e(r['coupling']['b'])} | "
                     f"{_e(r['coupling']['c'])} | {_e(r['coupling']['d'])} | {_e(st)} | {_e(su)} | "
                     f"{_e(r['subduction']['e3nn_trace_vs_formula'])} |")
    t = data["totals"]
    what = "All 32 groups" if len(rows) == 32 else f"{len(rows)} groups"
    lines += ["", f"**{what}**: {t['n_triples']} ordered triples, {t['n_nonzero']} non-zero channels, "
              f"{t['n_mult2']} with multiplicity >= 2 (max {t['max_mult']}), {t['n_pair_channels']} channels into a "
              f"merged complex pair; dimension failures: {t['dim_failures']}. Worst errors: "
              + ", ".join(f"({k}) {_e(t['worst'][k])}" for k in CHECKS)
              + f", stress {_e(t['worst']['stress'])}, subduction {_e(t['worst']['subduction'])}.", ""]
    for hm in ("m-3m", "6/mmm"):
        G = point_group(hm)
        lines += [f"## Subduction O(3) -> {hm} ({G.schoenflies}), e3nn parity p", "", "| l | p = +1 | p = -1 |",
                  "|---|---|---|"]
        for l, row in data["subduction_tables"][hm].items():
            lines.append(f"| {l} | {row['+']} | {row['-']} |")
        lines.append("")
    if data.get("timings"):
        tm = data["timings"]
        lines += ["## Timings (cold, fresh process; seconds)", "",
                  "| | import | irreps + all couplings | torch + e3nn import | subduction l<=6 | total | cached |",
                  "|---|---|---|---|---|---|---|"]
        for key, name in (("Oh", "O_h alone"), ("all_32", "all 32 groups")):
            d = tm[key]
            keys = ("import_s", "irreps_and_couplings_s", "torch_e3nn_import_s", "subduction_l6_s")
            total = statistics.median(sum(r[k] for k in keys) for r in d["runs"])
            lines.append(f"| {name} | " + " | ".join(f"{d[k]['median']:.2f}" for k in keys)
                         + f" | {total:.2f} | {d['cached_rebuild_s']['median']:.4f} |")
        m = data["machine"]
        loads = [" / ".join(f"{x:.2f}" for x in tm[k]) for k in ("load_before", "load_after")]
        n_runs = len(tm["Oh"]["runs"])
        lines += ["", f"Median of {n_runs} runs. Machine: {m.get('cpu')} ({m.get('cpu_count')} CPUs), "
                  f"{m.get('platform')}; load average (1/5/15 min) before {loads[0]}, after {loads[1]}.", ""]
    return "\n".join(lines) + "\n"


def collect(timings: bool = True, repeats: int = 3, lmax: int = 6, groups=POINT_GROUPS) -> dict:
    t0 = time.perf_counter()
    rows = validation_rows(lmax=lmax, groups=groups)
    worst = {k: max(r["coupling"][k] for r in rows) for k in CHECKS}
    worst["stress"] = max(max(max(r["stress"][k] for k in CHECKS), r["stress"]["transform"]) for r in rows)
    worst["subduction"] = max(max(r["subduction"][k] for k in CHECKS) for r in rows)
    worst["e3nn_trace_vs_formula"] = max(r["subduction"]["e3nn_trace_vs_formula"] for r in rows)
    totals = {k: sum(r[k] for r in rows) for k in ("n_triples", "n_nonzero", "n_mult2", "n_pair_channels")}
    totals["max_mult"] = max(r["max_mult"] for r in rows)
    totals["dim_failures"] = sum(r["dim_failures"] + r["stress"]["dim_failures"] + r["subduction"]["dim_failures"]
                                 for r in rows)
    totals["worst"] = worst
    data = {
        "machine": machine_info(),
        "validation": rows,
        "totals": totals,
        "subduction_tables": {hm: subduction_table(hm, lmax) for hm in ("m-3m", "6/mmm")},
        "worked_example_Oh_T1u_T1u": worked_example(),
        "validation_wall_s": time.perf_counter() - t0,
    }
    if timings:
        data["timings"] = cold_timings(repeats)
    return data


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="results/point_groups")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-timings", action="store_true")
    ap.add_argument("--groups", nargs="+", default=list(POINT_GROUPS), help="validate only these (default: all 32)")
    args = ap.parse_args(argv)
    groups = tuple(point_group(g).name for g in args.groups)
    data = collect(timings=not args.no_timings, repeats=args.repeats, groups=groups)
    out = Path(args.out)
    write_json(out / "validation.json", data)
    write_text(out / "README.md", render_markdown(data))
    t = data["totals"]
    print(f"{t['n_triples']} triples; worst " + ", ".join(f"{k}={v:.1e}" for k, v in t["worst"].items()))
    print(f"wrote {out / 'validation.json'} and {out / 'README.md'}")
    ok = max(t["worst"].values()) <= 1e-12 and t["dim_failures"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
