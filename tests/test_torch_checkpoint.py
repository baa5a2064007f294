"""ganzoo's torch-free reader of `.pth` state dicts refuses hostile and broken files
without running anything in them (the equivalence with torch's own files is in
test_fid_inception.py, which needs torch)."""

import io
import os
import pickle
import zipfile

import pytest

from ganzoo.metrics.torch_checkpoint import _LEGACY_MAGIC, CheckpointError, load_state_dict


class Payload:
    """Unpickling this runs a command (what a hostile weights file would carry)."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_hostile_legacy_header_is_refused_before_it_runs(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "hostile.pth"
    path.write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(CheckpointError):
        load_state_dict(path)
    # After a valid magic number too: every pickle of the legacy layout is read without classes.
    path.write_bytes(pickle.dumps(_LEGACY_MAGIC) + pickle.dumps(1001) + pickle.dumps(Payload(marker)))
    with pytest.raises(CheckpointError):
        load_state_dict(path)
    assert not marker.exists()


def test_a_hostile_zip_pickle_is_refused_before_it_runs(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "hostile.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"weight": Payload(marker)}))
    with pytest.raises(CheckpointError, match="posix.system|os.system|nt.system"):
        load_state_dict(path)
    assert not marker.exists()


def test_broken_files_name_what_is_wrong(tmp_path):
    (tmp_path / "empty.pth").write_bytes(b"")
    (tmp_path / "text.pth").write_text("hello")
    for name in ("empty.pth", "text.pth"):
        with pytest.raises(CheckpointError, match=name):
            load_state_dict(tmp_path / name)
    # A zip whose pickle is not a state dict of tensors.
    path = tmp_path / "numbers.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"a": 1}))
    with pytest.raises(CheckpointError, match="state dict of tensors"):
        load_state_dict(path)
    buffer = io.BytesIO()
    pickle.dump([1, 2], buffer)
    (tmp_path / "list.pth").write_bytes(buffer.getvalue())
    with pytest.raises(CheckpointError):
        load_state_dict(tmp_path / "list.pth")
