"""Load check of `ganzoo serve`: N concurrent clients for S seconds on loopback.

    python benchmarks/serve_load.py [--clients 20] [--seconds 30] [--batch 1] [--base DIR --model NAME]

Without --base it exports an untrained DCGAN (32x32) to a temporary folder.
Starts `ganzoo serve` as a separate process, and prints requests/s, p50/p99
latency, the error count (must be 0) and the server's resident memory before
and after.
"""

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--batch", type=int, default=1, help="images per request (default 1)")
    parser.add_argument("--base", help="a served folder (default: a fresh DCGAN export)")
    parser.add_argument("--model", default="dcgan")
    args = parser.parse_args()

    scratch = tempfile.TemporaryDirectory()
    base = args.base
    if base is None:
        import ganzoo

        base = scratch.name
        ganzoo.load("dcgan").export(Path(base) / "dcgan" / "1")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "ganzoo.cli", "serve", base, "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    url = f"http://127.0.0.1:{port}/v1/models/{args.model}"
    try:
        server.stdout.readline()  # "Serving ..." once it listens
        meta = json.loads(urllib.request.urlopen(url + "/metadata", timeout=60).read())
        dims = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]["inputs"]["z"]["tensor_shape"]
        latent_dim = int(dims["dim"][1]["size"])
        z = np.random.default_rng(0).standard_normal((args.batch, latent_dim)).round(4).tolist()
        body = json.dumps({"instances": z}).encode()
        post(url + ":predict", body)  # load the model before measuring
        before = rss_mb(server.pid)

        latencies, errors, lock = [], [0], threading.Lock()
        deadline = time.perf_counter() + args.seconds

        def client():
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                try:
                    ok = post(url + ":predict", body) == 200
                except Exception:
                    ok = False
                with lock:
                    latencies.append(time.perf_counter() - start)
                    errors[0] += not ok

        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        after = rss_mb(server.pid)
    finally:
        server.terminate()
        server.wait()
        scratch.cleanup()
    ms = 1e3 * np.asarray(latencies)
    print(f"{args.clients} clients, {args.seconds:.0f} s, {args.batch} image(s) per request, model {args.model}")
    print(f"requests/s {len(latencies) / elapsed:.1f}   p50 {np.percentile(ms, 50):.1f} ms   "
          f"p99 {np.percentile(ms, 99):.1f} ms   errors {errors[0]} of {len(latencies)}")
    print(f"server memory: {before:.0f} MB before, {after:.0f} MB after")
    return 1 if errors[0] else 0


if __name__ == "__main__":
    sys.exit(main())
