"""``make bench``: every crystal-zoo benchmark, in one go, on an idle machine.

    .venv/bin/python benchmarks/run_all.py [--quick] [--no-scripts] [--no-asv] [--bench REGEX]
                                           [--history RANGE] [--require-idle] [-- extra asv run arguments]

1. Checks that the machine is idle (1-minute load average against the number of usable cores) and
   warns loudly when it is not (``--require-idle``: stop instead): timings taken next to other work
   are not worth quoting.
2. Runs the stand-alone scripts that are present, in this order: ``featurize_jdft2d.py``,
   ``cgcnn_throughput.py``, ``tfn_throughput.py``. They write JSON under ``results/benchmarks/``
   (and skip cleanly where ``../shared/data`` is absent). ``--quick`` passes each script the smoke-test
   options its ``--help`` offers (``--quick``, else ``--repeats 1`` / ``--epochs 2`` / ``--limit 64``).
3. Runs the asv suite (``asv_*.py``, see ``asv.conf.json``) with ``asv run --python=same``: the
   installed packages of this interpreter, results recorded under the current commit
   (``--set-commit-hash``) in ``.asv/results/<machine>/``, then ``asv publish`` builds ``.asv/html/``.
   ``--quick`` runs every benchmark once and asv saves nothing (a check that the suite runs).
   ``--history RANGE`` (e.g. ``HEAD~5..HEAD``) instead runs ``asv run RANGE``: asv checks out every commit
   of the range, builds and installs it into its own virtualenv under ``.asv/env`` (``asv.conf.json``)
   and times it with the working tree's benchmarks; the stand-alone scripts are skipped.

Writes ``results/benchmarks/run_all.json`` (commands, exit codes, load averages before and after,
commit, whether the tree had uncommitted changes) after a full run, ``.asv/run_all_partial.json`` after
any other (``--quick``, ``--bench``, ``--history``, ``--no-*``: not figures to quote next to the full
suite), and prints where every result went. Exit status 1 when any step failed.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # `python benchmarks/run_all.py` from a checkout without an installed zoo

from zoo.core import provenance  # noqa: E402
from zoo.core.io import write_json  # noqa: E402
BENCH = ROOT / "benchmarks"
RESULTS = ROOT / "results" / "benchmarks"
SCRIPTS = ("featurize_jdft2d.py", "cgcnn_throughput.py", "tfn_throughput.py")
# Smoke-test options, used with --quick when a script's --help lists them (first match wins for --quick).
QUICK_OPTIONS = (("--repeats", "1"), ("--epochs", "2"), ("--limit", "64"))
IDLE_LOAD_PER_CORE = 0.2  # 1-min load average per usable core above which the machine counts as busy
ASV_PATTERN = "^asv_"  # the asv suite; the stand-alone scripts live in the same folder but are not asv benchmarks


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def load_state() -> dict:
    try:
        one, five, fifteen = os.getloadavg()
    except (AttributeError, OSError):  # Windows has no load average
        return {"available": False}
    cores = usable_cores()
    return {"available": True, "load1": one, "load5": five, "load15": fifteen, "cores": cores,
            "busy": one / cores > IDLE_LOAD_PER_CORE}


def banner(lines: list[str]) -> None:
    width = max(len(x) for x in lines) + 4
    print("\n" + "!" * width, file=sys.stderr)
    for line in lines:
        print(f"! {line.ljust(width - 4)} !", file=sys.stderr)
    print("!" * width + "\n", file=sys.stderr, flush=True)


def check_idle(when: str) -> dict:
    state = load_state()
    if not state["available"]:
        print(f"[{when}] load average not available on this platform: make sure the machine is idle", flush=True)
    elif state["busy"]:
        banner([
            f"MACHINE IS NOT IDLE ({when}): load average {state['load1']:.2f} (1 min), {state['load5']:.2f} (5 min)",
            f"on {state['cores']} usable cores (busy above {IDLE_LOAD_PER_CORE * state['cores']:.2f}).",
            "Other processes compete for the CPUs: timings from this run are NOT worth quoting.",
            "Stop other work, or use --require-idle to refuse to run on a busy machine.",
        ])
    else:
        print(f"[{when}] load average {state['load1']:.2f} on {state['cores']} cores: idle", flush=True)
    return state


def run(cmd: list[str], step: str) -> dict:
    print(f"\n=== {step}: {' '.join(cmd)}", flush=True)
    start = time.perf_counter()
    rc = subprocess.call(cmd, cwd=ROOT)
    wall = time.perf_counter() - start
    print(f"=== {step}: exit {rc} after {wall:.0f} s", flush=True)
    return {"step": step, "command": cmd, "returncode": rc, "wall_s": round(wall, 1)}


def quick_args(script: Path) -> list[str]:
    """The smoke-test options that ``script --help`` lists."""
    try:
        help_text = subprocess.run([sys.executable, str(script), "--help"], cwd=ROOT, capture_output=True, text=True, timeout=300).stdout
    except subprocess.TimeoutExpired:
        return []
    if "--quick" in help_text:
        return ["--quick"]
    args: list[str] = []
    for flag, value in QUICK_OPTIONS:
        if flag in help_text:
            args += [flag, value]
    return args


def asv_command() -> list[str]:
    exe = Path(sys.executable).with_name("asv")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("asv")
    if found:
        return [found]
    return [sys.executable, "-m", "asv"]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:
        k = argv.index("--")
        argv, extra = argv[:k], argv[k + 1:]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="smoke test: short script runs, every asv benchmark once, nothing saved by asv")
    p.add_argument("--no-scripts", action="store_true", help="skip the stand-alone scripts")
    p.add_argument("--no-asv", action="store_true", help="skip the asv suite")
    p.add_argument("--bench", default=ASV_PATTERN, help=f"asv benchmark regex (default {ASV_PATTERN!r}: the whole asv suite)")
    p.add_argument("--history", metavar="RANGE", help="asv over a commit range (e.g. HEAD~5..HEAD): each commit built and "
                   "installed into asv's virtualenv; implies --no-scripts")
    p.add_argument("--require-idle", action="store_true", help="exit (status 2) instead of warning when the machine is busy")
    args = p.parse_args(argv)
    if args.history:
        args.no_scripts = True

    started = datetime.now(timezone.utc)
    before = check_idle("before")
    if args.require_idle and before.get("busy"):
        print("refusing to benchmark on a busy machine (--require-idle)", file=sys.stderr)
        return 2

    git = provenance.git_info(ROOT)
    commit, dirty = git["commit"], bool(git["dirty"])
    steps: list[dict] = []
    t0 = time.time()

    if not args.no_scripts:
        for name in SCRIPTS:
            script = BENCH / name
            if not script.exists():
                print(f"\n=== {name}: not present, skipped", flush=True)
                steps.append({"step": name, "skipped": "not present"})
                continue
            cmd = [sys.executable, str(script)] + (quick_args(script) if args.quick else [])
            steps.append(run(cmd, name))

    asv = asv_command()
    if not args.no_asv:
        conf = ["--config", str(ROOT / "asv.conf.json")]
        if not (Path.home() / ".asv-machine.json").exists():
            # asv needs a machine description once per machine; --yes takes the detected values.
            steps.append(run(asv + ["machine", "--yes"] + conf, "asv machine"))
        cmd = asv + ["run", "--python=same", "--show-stderr", "-b", args.bench] + conf
        if args.history:  # asv's own environments, one build per commit (asv.conf.json)
            cmd = asv + ["run", "--show-stderr", "-b", args.bench, args.history] + conf
        elif args.quick:
            cmd.append("--quick")
        elif commit:
            cmd += ["--set-commit-hash", commit]  # without it, asv does not save results of an existing environment
        else:
            print("not a git checkout: asv cannot label the results with a commit, so it will not save them", file=sys.stderr)
        steps.append(run(cmd + extra, "asv run"))
        if not args.quick and (commit or args.history):
            steps.append(run(asv + ["publish"] + conf, "asv publish"))

    after = check_idle("after")
    failed = [s["step"] for s in steps if s.get("returncode", 0) != 0]

    manifest = {
        "started_utc": started.isoformat(timespec="seconds"),
        "wall_s": round(time.time() - t0, 1),
        "quick": args.quick,
        "history": args.history,
        "bench": args.bench,
        "commit": commit,
        "uncommitted_changes": dirty,
        "machine": {**provenance.machine(), "python": sys.version.split()[0], "cores": usable_cores()},
        "environment": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "XLA_FLAGS", "CUDA_VISIBLE_DEVICES", "ZOO_CACHE")},
        "load_before": before,
        "load_after": after,
        "steps": steps,
        "failed": failed,
    }
    # Only a full run's manifest goes to results/ (which holds figures to quote); a smoke test, a subset or a
    # history run would replace it with a record of something else.
    full = not (args.quick or args.history or args.no_scripts or args.no_asv or args.bench != ASV_PATTERN)
    manifest_path = RESULTS / "run_all.json" if full else ROOT / ".asv" / "run_all_partial.json"
    manifest_path.parent.mkdir(parents=True, exist_ok=True)
    write_json(manifest_path, manifest)

    print("\nWhere the results went:")
    new = sorted(f for f in RESULTS.glob("*.json") if f.stat().st_mtime >= t0 and f.name != "run_all.json")
    for f in new:
        print(f"  {f.relative_to(ROOT)}")
    if not args.no_scripts and not new:
        print(f"  (no script wrote to {RESULTS.relative_to(ROOT)}/ in this run: data absent or scripts skipped)")
    if not args.no_asv:
        if args.quick:
            print("  asv: --quick run, results not saved (asv's rule for quick runs)")
        elif args.history:
            print(f"  asv results: {(ROOT / '.asv' / 'results').relative_to(ROOT)}/<machine>/<commit>-virtualenv-*.json")
            print(f"  asv report:  {(ROOT / '.asv' / 'html' / 'index.html').relative_to(ROOT)}  (or `asv preview`)")
        elif commit:
            written = sorted(f for f in (ROOT / ".asv" / "results").glob(f"*/{commit[:8]}-*.json") if f.stat().st_mtime >= t0)
            for f in written:
                print(f"  asv results: {f.relative_to(ROOT)}")
            if not written:
                print("  asv results: none written (see the asv output above)")
            print(f"  asv report:  {(ROOT / '.asv' / 'html' / 'index.html').relative_to(ROOT)}  (or `asv preview`)")
            if dirty:
                print("  note: the tree had uncommitted changes; asv labels the results with HEAD all the same")
    print(f"  run manifest: {manifest_path.relative_to(ROOT)}")
    if before.get("busy") or after.get("busy"):
        banner(["The machine was busy during this run: do not quote these timings."])
    if failed:
        print(f"\nFAILED steps: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
