"""Load check of `ganzoo serve`: N concurrent clients for S seconds on loopback.

    python benchmarks/serve_load.py [--clients 20] [--seconds 30] [--batch 1]
        [--setups plain,batching,broken] [--base DIR --model NAME] [--json FILE]

Each setup starts `ganzoo serve` as a separate process on a fresh port, and
prints requests/s, p50/p99 latency, the error count (must be 0) and the
server's resident memory before and after:

- plain: the default server;
- batching: `--batching` (TF Serving's defaults: max_batch_size 1000,
  batch_timeout_micros 0, one batch thread per core);
- broken: the default server, with a half-copied version beside the served
  one (`MODEL/2`: saved_model.pb whole, variables truncated) and a
  half-copied model (`broken/1`). The clients ask for MODEL as before: the
  healthy version's throughput must not drop.

Without --base it exports an untrained DCGAN (32x32) to a temporary folder.
"""

import argparse
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return float("nan")


def post(url, body):
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()
        return response.status


def half_copy(source, target):
    """A version folder as a copy still under way leaves it."""
    shutil.copytree(source, target)
    data = next((target / "variables").glob("variables.data-*"))
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])


def measure(base, model, setup, clients, seconds, batch):
    flags = ["--batching"] if setup == "batching" else []
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "ganzoo.cli", "serve", str(base), "--port", str(port), *flags],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    url = f"http://127.0.0.1:{port}/v1/models/{model}"
    try:
        banner = server.stdout.readline().strip()  # printed once it listens
        meta = json.loads(urllib.request.urlopen(url + "/metadata", timeout=60).read())
        dims = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]["inputs"]["z"]["tensor_shape"]
        latent_dim = int(dims["dim"][1]["size"])
        z = np.random.default_rng(0).standard_normal((batch, latent_dim)).round(4).tolist()
        body = json.dumps({"instances": z}).encode()
        for _ in range(5):
            post(url + ":predict", body)  # warm the connection pool and the graph
        before = rss_mb(server.pid)

        latencies, errors, lock = [], [0], threading.Lock()
        deadline = time.perf_counter() + seconds

        def client():
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                try:
                    ok = post(url + ":predict", body) == 200
                except (OSError, urllib.error.URLError):
                    ok = False
                with lock:
                    latencies.append(time.perf_counter() - start)
                    errors[0] += not ok

        threads = [threading.Thread(target=client) for _ in range(clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        after = rss_mb(server.pid)
        status = json.loads(urllib.request.urlopen(url, timeout=60).read())["model_version_status"]
    finally:
        server.terminate()
        server.wait()
    ms = 1e3 * np.asarray(latencies)
    return {"setup": setup, "requests": len(latencies), "requests_per_s": round(len(latencies) / elapsed, 1),
            "p50_ms": round(float(np.percentile(ms, 50)), 1), "p99_ms": round(float(np.percentile(ms, 99)), 1),
            "errors": errors[0], "rss_mb_before": round(before), "rss_mb_after": round(after),
            "status": status, "banner": banner}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--batch", type=int, default=1, help="images per request (default 1)")
    parser.add_argument("--setups", default="plain,batching,broken")
    parser.add_argument("--base", help="a served folder (default: a fresh DCGAN export)")
    parser.add_argument("--model", default="dcgan")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch) / "models"
        if args.base is None:
            import ganzoo

            ganzoo.load("dcgan").export(base / args.model / "1")
        else:
            shutil.copytree(args.base, base)
        results = []
        for setup in args.setups.split(","):
            if setup == "broken":
                served = max((p for p in (base / args.model).iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
                half_copy(served, base / args.model / str(int(served.name) + 1))
                half_copy(served, base / "broken" / "1")
            results.append(measure(base, args.model, setup, args.clients, args.seconds, args.batch))
            r = results[-1]
            print(f"{setup:9s} {r['requests_per_s']:7.1f} requests/s   p50 {r['p50_ms']:6.1f} ms   "
                  f"p99 {r['p99_ms']:7.1f} ms   errors {r['errors']} of {r['requests']}   "
                  f"memory {r['rss_mb_before']} -> {r['rss_mb_after']} MB", flush=True)
            if setup == "broken":
                print(f"          status of {args.model}: {json.dumps(r['status'])}")
    print(f"{args.clients} clients x {args.seconds:.0f} s, {args.batch} image(s) per request, model {args.model}")
    if args.json:
        Path(args.json).write_text(json.dumps({"clients": args.clients, "seconds": args.seconds,
                                               "batch": args.batch, "results": results}, indent=2))
    return 1 if any(r["errors"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
