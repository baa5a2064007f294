"""Wall time of default runs against issue 19's budget: each default run at
most 10 minutes on 2 cores of a machine whose float32 matmul rate is
200 GFLOP/s.

    python benchmarks/budget.py [--entries dcgan sngan ...] [--threads 1] [--parallel 2]

A faster machine can stand in for the budget machine: with `--threads 1`
each run gets one core of this one (about 200 GFLOP/s on a 2-core AVX-512
machine of 400), and `--parallel 2` runs two entries at once, one per
core, which only makes them slower (they share the cache and memory). The
float32 matmul rate of each core is measured the same way first (4096^2,
`benchmarks/run.py`'s `matmul_gflops`, in as many processes at once as
runs will share the machine), and every time is also given scaled to a
200 GFLOP/s machine (time x rate / 200, with the higher of the readings
before and after the runs: pessimistic for the part of a step
that is per-op overhead, which does not scale with the matmul rate).

Each entry runs as `ganzoo train NAME` with its YAML as it is (in-training
evaluation included) in a new folder, in its own process, with an empty
ganzoo cache, so that it pays what a first run on a machine pays (the XLA
probe). The time compared with the budget is the command's wall time, from
start to exit (TensorFlow's import, the data, the model, the probe, the
training and the export); the `seconds` of `fit` alone, from run.json, are
printed beside it.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BUDGET_SECONDS = 600
BUDGET_GFLOPS = 200.0
ENTRIES = ["dcgan", "lsgan", "cgan", "sngan", "wgan", "wgan_gp", "pggan"]  # the digits entries issue 19 retuned

MATMUL = (
    "import sys; sys.path.insert(0, 'benchmarks'); from run import matmul_gflops; "
    "print(matmul_gflops())"
)


def environment(threads, cache=None):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    if threads:
        env.update(TF_NUM_INTRAOP_THREADS=str(threads), TF_NUM_INTEROP_THREADS=str(threads))
    if cache:
        env["GANZOO_CACHE"] = str(cache)
    return env


def matmul_rates(threads, processes):
    """The matmul rate of each of `processes` processes run at once."""
    root = Path(__file__).resolve().parents[1]
    running = [
        subprocess.Popen([sys.executable, "-c", MATMUL], cwd=root, env=environment(threads),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(processes)
    ]
    rates = []
    for process in running:
        out, err = process.communicate()
        if process.returncode:
            sys.exit(f"The matmul measurement failed:\n{err.strip()[-2000:]}")
        rates.append(float(out.split()[-1]))
    return rates


def cpu_flags():
    wanted = {"avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile"}
    try:
        with open("/proc/cpuinfo") as info:
            line = next((line for line in info if line.startswith(("flags", "Features"))), "")
    except OSError:
        return []
    return sorted(set(line.split(":", 1)[-1].split()) & wanted)


def train(name, folder, threads, extra):
    command = [sys.executable, "-c", "import sys; from ganzoo.cli import main; sys.exit(main())",
               "train", name, "--out", str(folder), *extra]
    with open(folder.with_suffix(".log"), "w") as log:  # the child keeps its own copy
        return subprocess.Popen(command, env=environment(threads, cache=folder.with_suffix(".cache")),
                                stdout=log, stderr=subprocess.STDOUT)


def scaled(seconds, rate):
    return seconds * rate / BUDGET_GFLOPS


def verdict(seconds):
    return "within" if seconds <= BUDGET_SECONDS else "over"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", nargs="+", default=ENTRIES)
    parser.add_argument("--threads", type=int, default=1, help="TensorFlow threads per run (0: TF's default)")
    parser.add_argument("--parallel", type=int, default=2, help="runs at once")
    parser.add_argument("--keep", default=None, help="keep the runs under this folder (a new one)")
    parser.add_argument("--json", default=None, help="append the results to this JSON list")
    parser.add_argument("train_args", nargs="*", help="after --: passed to every `ganzoo train`")
    args = parser.parse_args()
    if args.parallel < 1 or args.threads < 0:
        parser.error("--parallel must be at least 1 and --threads at least 0.")
    if len(set(args.entries)) < len(args.entries):
        parser.error("--entries names an entry twice; each entry gets one run folder.")
    if args.keep and Path(args.keep).exists() and any(Path(args.keep).iterdir()):
        parser.error(f"--keep {args.keep} is not empty: an earlier run there would resume, and its time "
                     "would be only the resumed part. Give a new folder.")

    rates = matmul_rates(args.threads, args.parallel)
    rate = max(rates)  # the pessimistic reading; measured again after the runs: see below
    flags = cpu_flags()
    print(f"{args.parallel} process(es) at once, {args.threads or 'default'} thread(s) each: "
          f"matmul {', '.join(f'{r:.0f}' for r in rates)} GFLOP/s; CPU flags {' '.join(flags)}", flush=True)

    root = Path(args.keep or tempfile.mkdtemp(prefix="ganzoo-budget-"))
    root.mkdir(parents=True, exist_ok=True)
    pending, running, results = list(args.entries), {}, []
    while pending or running:
        while pending and len(running) < args.parallel:
            name = pending.pop(0)
            folder = root / name
            running[name] = (time.perf_counter(), train(name, folder, args.threads, args.train_args), folder)
        time.sleep(0.2)
        for name, (started, process, folder) in list(running.items()):
            if process.poll() is None:
                continue
            wall = time.perf_counter() - started
            del running[name]
            record = folder / "run.json"
            if process.returncode or not record.exists():
                print(f"{name}: failed (exit {process.returncode}); see {folder.with_suffix('.log')}", flush=True)
                continue
            fit_seconds = json.loads(record.read_text()).get("seconds")
            print(f"{name}: {wall:.0f} s here ({fit_seconds:.0f} s in fit), {scaled(wall, rate):.0f} s scaled "
                  f"to {BUDGET_GFLOPS:.0f} GFLOP/s ({verdict(scaled(wall, rate))} the "
                  f"{BUDGET_SECONDS // 60}-minute budget)", flush=True)
            results.append({"entry": name, "wall_seconds": round(wall, 1), "fit_seconds": fit_seconds,
                            "scaled_seconds": round(scaled(wall, rate), 1), "matmul_gflops": rates,
                            "threads": args.threads, "parallel": args.parallel, "cpu_flags": flags,
                            "train_args": args.train_args, "run": str(folder)})
    # Measured again once the runs are done: a reading taken while other work
    # shared the cores is too low, and scaling by it flatters every run. The
    # higher of the two is the pessimistic one for the budget.
    after = matmul_rates(args.threads, args.parallel)
    if max(after) > rate:
        print(f"matmul again after the runs: {', '.join(f'{r:.0f}' for r in after)} GFLOP/s; rescaled:", flush=True)
        for result in results:
            result["scaled_seconds"] = round(scaled(result["wall_seconds"], max(after)), 1)
            print(f"{result['entry']}: {result['scaled_seconds']:.0f} s scaled ({verdict(result['scaled_seconds'])})",
                  flush=True)
    for result in results:
        result["matmul_gflops_after"] = after
    if not args.keep:
        print(f"runs kept in {root} (delete it when done)")
    if args.json:
        path = Path(args.json)
        previous = json.loads(path.read_text()) if path.exists() else []
        path.write_text(json.dumps(previous + results, indent=1))


if __name__ == "__main__":
    main()
