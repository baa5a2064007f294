"""SIGKILL at each phase of a run, then the same call: it finishes, losing at most the unfinished epoch."""

import json
import os
import subprocess
import sys

import pytest

from ganzoo.runs import RunFolder

TRAIN = ("import ganzoo; ganzoo.train('vanilla', dataset='ring', epochs=3, out={out!r}, batch_size=256, "
         "eval_every=0, verbose=0, latent_dim=4, network_args={{'hidden_units': [16, 16]}}{extra})")

# Each phase: code run before ganzoo.train that kills the process there, in epoch 2's writes.
KILL = "import os, signal\ndef die(): os.kill(os.getpid(), signal.SIGKILL)\n"
PHASES = {
    "inside an epoch": ("import keras\nkill = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs: "
                        "die() if b == 30 and os.path.exists({history!r}) else None)\n",
                        ", callbacks=[kill]"),
    # The checkpoint is complete in its temporary file, not yet renamed.
    "checkpoint weights": ("import ganzoo.files as f\nsync = f.fsync_file\nseen = []\n"
                           "def fsync(path):\n    sync(path)\n    seen.append(path)\n"
                           "    if path.name.startswith('partial-') and path.name.endswith('.weights.h5') "
                           "and sum(p.name.endswith('.weights.h5') for p in seen) == 2: die()\n"
                           "f.fsync_file = fsync\n", ""),
    "state.json": ("import ganzoo.files as f\ncommit = f.commit\ncount = []\n"
                   "def patched(partial, path):\n    if path.name == 'state.json':\n        count.append(1)\n"
                   "        if len(count) == 2: die()\n    commit(partial, path)\nf.commit = patched\n", ""),
    "model.keras": ("import ganzoo.files as f\ncommit = f.commit\ncount = []\n"
                    "def patched(partial, path):\n    if path.name == 'model.keras':\n        count.append(1)\n"
                    "        if len(count) == 2: die()\n    commit(partial, path)\nf.commit = patched\n", ""),
    "history.json": ("import ganzoo.files as f\ncommit = f.commit\ncount = []\n"
                     "def patched(partial, path):\n    if path.name == 'history.json':\n        count.append(1)\n"
                     "        if len(count) == 2: die()\n    commit(partial, path)\nf.commit = patched\n", ""),
    # The SavedModel is written, in its temporary folder, not yet renamed.
    "export": ("import ganzoo.export as e\nwrite = e._write_archive\n"
               "def patched(*args):\n    write(*args)\n    die()\ne._write_archive = patched\n", ""),
}


@pytest.mark.slow
@pytest.mark.parametrize("phase", PHASES)
def test_a_run_killed_at_any_phase_resumes_and_finishes(tmp_path, phase):
    out = tmp_path / "run"
    setup, extra = PHASES[phase]
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "-1"}
    killed = subprocess.run([sys.executable, "-c", KILL + setup.format(history=str(out / "history.json"))
                             + TRAIN.format(out=str(out), extra=extra)], env=env, capture_output=True, text=True)
    assert killed.returncode == -9, killed.stderr[-2000:]  # it died where it was told to
    folder = RunFolder(out)
    done = folder.epochs_done()
    assert done >= (3 if phase == "export" else 1) and folder.record()["status"] == "running"
    again = subprocess.run([sys.executable, "-c", TRAIN.format(out=str(out), extra="")], env=env,
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert folder.record()["status"] == "finished"
    assert [h["epoch"] for h in json.loads((out / "history.json").read_text())] == [1, 2, 3]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["epoch-3.weights.h5", "state.json"]
    assert (out / "saved_model" / "1" / "saved_model.pb").exists()
    assert not [p.name for p in out.rglob("*") if "partial" in p.name or "replaced" in p.name]  # nothing half-written
