"""Reference statistics: the mean and covariance of real images' features,
saved once and compared with every generator (`ganzoo stats`, then
`ganzoo evaluate --reference-stats`).

The file is an `.npz` in the layout TTUR's `fid.py` and pytorch-fid read and
write: arrays `mu` [d] and `sigma` [d, d]. ganzoo adds what makes the numbers
reproducible (`features`, `resize`, `weights_sha256`, `n`, `source`), which
those tools ignore; files made by them (only `mu` and `sigma`) are read too.
"""

import io
import json
import zipfile
from pathlib import Path

import numpy as np

from ganzoo.files import write_atomically
from ganzoo.metrics.distances import feature_statistics

# pytorch-fid's, matched as it matches them (case-sensitively: it globs "*.png", ...).
FOLDER_SUFFIXES = (".bmp", ".jpg", ".jpeg", ".pgm", ".png", ".ppm", ".tif", ".tiff", ".webp")


def folder_images(folder, batch_size=50):
    """Batches of a folder's images as uint8 RGB at their own size, read as
    pytorch-fid reads them (PIL, `convert("RGB")`, sorted names); images
    of different sizes come in batches of their own."""
    from PIL import Image

    files = _image_files(folder)
    if not files:
        raise ValueError(f"{folder} holds no images ({', '.join(FOLDER_SUFFIXES)}).")
    batch = []
    for path in files:
        try:
            with Image.open(path) as image:
                pixels = np.asarray(image.convert("RGB"))
        except OSError as error:
            raise ValueError(f"{path} is not a readable image ({error}); remove it or fix it.") from None
        if batch and pixels.shape != batch[0].shape:
            yield np.stack(batch)
            batch = []
        batch.append(pixels)
        if len(batch) == batch_size:
            yield np.stack(batch)
            batch = []
    if batch:
        yield np.stack(batch)


def _image_files(folder):
    return sorted(p for p in Path(folder).iterdir() if p.suffix in FOLDER_SUFFIXES and p.is_file())


def count_folder_images(folder):
    return len(_image_files(folder))


def compute(features, info):
    """`{"mu", "sigma", **info}` from features `[n, d]`."""
    mu, sigma = feature_statistics(features)
    return {"mu": mu, "sigma": sigma, "n": len(features), **info}


def save(path, stats, force=False):
    """Write `stats` (from `compute`) to `path`, atomically; an existing
    file is replaced only with `force`."""
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"Reference statistics are .npz files (as TTUR and pytorch-fid write them); got {path}.")
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; choose another --out or pass --force to replace it.")
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"mu": stats["mu"], "sigma": stats["sigma"]}
    info = {k: v for k, v in stats.items() if k not in arrays}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays, info=np.array(json.dumps(info)))
    try:
        write_atomically(path, buffer.getvalue(), replace=force)
    except FileExistsError:
        raise FileExistsError(f"{path} exists; choose another --out or pass --force to replace it.") from None
    return path


def load(path):
    """`(mu, sigma, info)` from a reference-statistics file; `info` is `{}`
    for files made by TTUR or pytorch-fid."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Reference statistics not found: {path}. Make them with `ganzoo stats SOURCE "
                                "--out FILE.npz` (or pytorch-fid's --save-stats).")
    try:
        with np.load(path, allow_pickle=False) as file:
            arrays = {name: file[name] for name in file.files}
    except (OSError, EOFError, ValueError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path} is not a readable .npz file ({error}).") from None
    if "mu" not in arrays or "sigma" not in arrays:
        raise ValueError(f"{path} has no 'mu' and 'sigma' arrays (it has {', '.join(arrays) or 'none'}); "
                         "reference statistics are the npz of TTUR, pytorch-fid or `ganzoo stats`.")
    mu, sigma = np.asarray(arrays["mu"], "float64"), np.asarray(arrays["sigma"], "float64")
    try:
        info = json.loads(str(arrays["info"])) if "info" in arrays else {}
    except ValueError:
        raise ValueError(f"{path}: its 'info' is not the JSON `ganzoo stats` writes.") from None
    if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)):
        raise ValueError(f"{path}: mu must be [d] and sigma [d, d]; got {list(mu.shape)} and {list(sigma.shape)}.")
    if not (np.isfinite(mu).all() and np.isfinite(sigma).all()):
        raise ValueError(f"{path}: mu or sigma holds NaN or infinity.")
    return mu, sigma, info
