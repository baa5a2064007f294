"""MultiWorkerMirroredStrategy: two `ganzoo train` processes on localhost."""

import json
import os
import socket
import subprocess
import sys

import pytest

from ganzoo.runs import RunFolder

from test_cli import TINY_DCGAN


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_two_workers_train_in_step_and_only_the_chief_writes(tmp_path):
    cluster = {"worker": [f"localhost:{port}" for port in free_ports(2)]}
    out = tmp_path / "run"
    command = [sys.executable, "-m", "ganzoo.cli", "train", *TINY_DCGAN, "--strategy", "multiworker",
               "--out", str(out), "--eval-every", "0"]
    command[command.index("--epochs") + 1] = "2"
    workers = []
    for index in range(2):
        scratch = tmp_path / f"tmp{index}"  # where a worker may put its own copies
        scratch.mkdir()
        env = {**os.environ, "CUDA_VISIBLE_DEVICES": "-1", "TMPDIR": str(scratch),
               "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})}
        workers.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [worker.communicate(timeout=400) for worker in workers]
    for worker, (stdout, stderr) in zip(workers, outputs):
        assert worker.returncode == 0, stderr[-3000:]
    fingerprints = [line for stdout, _ in outputs for line in stdout.splitlines() if "fingerprint" in line]
    assert len(fingerprints) == 2 and fingerprints[0] == fingerprints[1]
    assert "2 replica(s)" in outputs[0][0]
    # The chief wrote the run; the other worker left nothing behind.
    assert json.loads((out / "run.json").read_text())["status"] == "finished"
    assert RunFolder(out).epochs_done() == 2
    assert (out / "samples" / "epoch_002.png").exists() and (out / "saved_model" / "1" / "saved_model.pb").exists()
    assert "non-chief" in outputs[1][0] and not any((tmp_path / "tmp1").iterdir())
