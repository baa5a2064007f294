"""Files: durable writes (data reaches the disk before a rename makes it
visible, and the rename reaches it too, so a kill or a power cut leaves the
old file or the new one, never half of one: `ganzoo.runs`, `ganzoo.export`),
and the hash that protocols record of a weights file."""

import hashlib
import os

PARTIAL = ".partial-"  # hidden temporary files are named .NAME.partial-PID


def fsync_file(path):
    """Flush a written file's data to the disk."""
    with open(path, "rb") as file:
        os.fsync(file.fileno())


def sync_dir(folder):
    """Flush a folder's entries (a rename, a new file) to the disk."""
    try:
        handle = os.open(folder, os.O_RDONLY)
    except OSError:  # some filesystems cannot open folders: the rename is still atomic
        return
    try:
        os.fsync(handle)
    except OSError:
        pass
    finally:
        os.close(handle)


def sync_tree(folder):
    """`fsync_file` every file under `folder`, then `sync_dir` every folder."""
    folders = [folder]
    for entry in folder.rglob("*"):
        if entry.is_file():
            fsync_file(entry)
        elif entry.is_dir():
            folders.append(entry)
    for sub in folders:
        sync_dir(sub)


def commit(partial, path):
    """Rename a complete, synced `partial` over `path`, and sync the folder so the rename survives a power cut."""
    partial.replace(path)
    sync_dir(path.parent)


def write_atomically(path, data, replace=True):
    """`data` (str or bytes) to `path` through a synced temporary file beside it.

    `replace=False`: never replace an existing `path`, even one another
    process wrote a moment ago (FileExistsError): the file is linked into
    place, which fails where a rename would overwrite.
    """
    partial = path.with_name(f".{path.name}{PARTIAL}{os.getpid()}")
    try:
        with open(partial, "wb" if isinstance(data, bytes) else "w") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        if not replace:
            os.link(partial, path)
            partial.unlink()
            sync_dir(path.parent)
            return
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    commit(partial, path)


def file_sha256(path):
    """The SHA-256 of a file's bytes, read in blocks (weights files are large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
