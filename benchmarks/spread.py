"""Repeats of a throughput benchmark and their spread: every figure a benchmark publishes is the median of
``--repeats`` runs of every model, the models interleaved in each repeat (a change of machine load then
hits all of them alike), with the quartiles and the extremes next to it, and the load average of the
machine before and after. One home for the benchmarks that publish structures/s."""
from __future__ import annotations

import os
import statistics
from typing import Any, Callable, Sequence


def spread(values: Sequence[float]) -> dict[str, Any]:
    """Median, quartiles (IQR) and min-max of repeated measurements (quartiles need >= 2 values)."""
    v = sorted(float(x) for x in values)
    q1, _, q3 = statistics.quantiles(v, n=4, method="inclusive") if len(v) >= 2 else (v[0], v[0], v[0])
    return {"median": statistics.median(v), "q1": q1, "q3": q3, "iqr": q3 - q1, "min": v[0], "max": v[-1], "n": len(v),
            "values": list(values)}


def interleaved(runners: dict[str, Callable[[], dict]], repeats: int) -> tuple[dict[str, list[dict]], dict[str, Any]]:
    """``repeats`` rounds of every runner in turn; each round's results per name, and the load averages
    (1, 5, 15 min) seen before the first and after the last round."""
    before = os.getloadavg()
    out: dict[str, list[dict]] = {name: [] for name in runners}
    for r in range(repeats):
        for name, run in runners.items():
            print(f"== {name} (repeat {r + 1} of {repeats})", flush=True)
            res = run()
            res["load_average_1min_after"] = os.getloadavg()[0]
            out[name].append(res)
    return out, {"before": list(before), "after": list(os.getloadavg())}


def summarise(rounds: list[dict], key: str = "structures_per_s") -> dict[str, Any]:
    """One model's record: its first round's fields (epoch times, compilations ...) with ``key`` replaced by
    the median over the rounds, ``<key>_spread`` beside it and every round under ``repeats``."""
    if any("error" in r for r in rounds):
        return next(r for r in rounds if "error" in r)
    out = dict(rounds[0])
    s = spread([r[key] for r in rounds])
    out[key] = s["median"]
    out[f"{key}_spread"] = {k: v for k, v in s.items() if k != "values"}
    out["repeats"] = [{k: r.get(k) for k in (key, "median_steady_epoch_s", "time_to_first_epoch_s", "compilations",
                                             "load_average_1min_after") if k in r} for r in rounds]
    return out
