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
200 GFLOP/s machine (time x rate / 200: pessimistic for the part of a step
that is per-op overhead, which does not scale with the matmul rate).

Each entry runs as `ganzoo train NAME` with its YAML as it is (in-training
evaluation included) in a temporary folder, in its own process; the time is
the `seconds` that run writes to its run.json.
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
ENTRIES = ["dcgan", "lsgan", "sngan", "wgan", "wgan_gp", "pggan"]  # the unconditional image entries

MATMUL = (
    "import sys; sys.path.insert(0, 'benchmarks'); from run import matmul_gflops; "
    "print(matmul_gflops())"
)


def environment(threads):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    if threads:
        env.update(TF_NUM_INTRAOP_THREADS=str(threads), TF_NUM_INTEROP_THREADS=str(threads))
    return env


def matmul_rates(threads, processes):
    """The matmul rate of each of `processes` processes run at once."""
    root = Path(__file__).resolve().parents[1]
    running = [
        subprocess.Popen([sys.executable, "-c", MATMUL], cwd=root, env=environment(threads),
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for _ in range(processes)
    ]
    return [float(p.communicate()[0].split()[-1]) for p in running]


def train(name, folder, threads, extra):
    command = [sys.executable, "-c", "import sys; from ganzoo.cli import main; sys.exit(main())",
               "train", name, "--out", str(folder), *extra]
    log = open(folder.with_suffix(".log"), "w")
    return subprocess.Popen(command, env=environment(threads), stdout=log, stderr=subprocess.STDOUT)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--entries", nargs="+", default=ENTRIES)
    parser.add_argument("--threads", type=int, default=1, help="TensorFlow threads per run (0: TF's default)")
    parser.add_argument("--parallel", type=int, default=2, help="runs at once")
    parser.add_argument("--keep", default=None, help="keep the runs under this folder")
    parser.add_argument("--json", default=None, help="append the results to this JSON list")
    parser.add_argument("train_args", nargs="*", help="after --: passed to every `ganzoo train`")
    args = parser.parse_args()

    rates = matmul_rates(args.threads, args.parallel)
    rate = min(rates)
    flags = sorted(set(open("/proc/cpuinfo").read().split("flags")[1].split("\n")[0].split()) &
                   {"avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile"})
    print(f"{args.parallel} process(es) at once, {args.threads or 'default'} thread(s) each: "
          f"matmul {', '.join(f'{r:.0f}' for r in rates)} GFLOP/s; CPU flags {' '.join(flags)}", flush=True)

    root = Path(args.keep or tempfile.mkdtemp(prefix="ganzoo-budget-"))
    root.mkdir(parents=True, exist_ok=True)
    pending, running, results = list(args.entries), {}, []
    while pending or running:
        while pending and len(running) < args.parallel:
            name = pending.pop(0)
            folder = root / name
            running[name] = (train(name, folder, args.threads, args.train_args), folder, time.time())
        time.sleep(2)
        for name, (process, folder, started) in list(running.items()):
            if process.poll() is None:
                continue
            del running[name]
            record = folder / "run.json"
            if process.returncode or not record.exists():
                print(f"{name}: failed (exit {process.returncode}); see {folder.with_suffix('.log')}", flush=True)
                continue
            seconds = json.loads(record.read_text()).get("seconds", time.time() - started)
            scaled = seconds * rate / BUDGET_GFLOPS
            verdict = "within" if scaled <= BUDGET_SECONDS else "over"
            print(f"{name}: {seconds:.0f} s here, {scaled:.0f} s scaled to {BUDGET_GFLOPS:.0f} GFLOP/s "
                  f"({verdict} the {BUDGET_SECONDS // 60}-minute budget)", flush=True)
            results.append({"entry": name, "seconds": seconds, "scaled_seconds": round(scaled, 1),
                            "matmul_gflops": rates, "threads": args.threads, "parallel": args.parallel,
                            "cpu_flags": flags, "run": str(folder) if args.keep else None})
    if args.json:
        path = Path(args.json)
        previous = json.loads(path.read_text()) if path.exists() else []
        path.write_text(json.dumps(previous + results, indent=1))


if __name__ == "__main__":
    main()
