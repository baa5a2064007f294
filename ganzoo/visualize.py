"""Pictures of samples: image grids and 2D scatter plots, as PIL images."""

import math

import numpy as np
from PIL import Image, ImageDraw

from ganzoo.arrays import latent_noise


def image_grid(images, columns=None, min_cell=64, padding=2):
    """Tile `[n, H, W, C]` images in [-1, 1] into one PIL image.

    Small images are enlarged (nearest neighbour) to at least `min_cell`
    pixels so an 8x8 digit is visible.
    """
    images = np.asarray(images, dtype="float32")
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"Expected images [n, H, W, 1 or 3], got shape {list(images.shape)}.")
    n, height, width, channels = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    pixels = np.round((np.clip(images, -1, 1) + 1) * 127.5).astype("uint8")
    scale = max(1, math.ceil(min_cell / max(height, width)))
    cell_h, cell_w = height * scale, width * scale
    canvas = np.full(
        (rows * (cell_h + padding) + padding, columns * (cell_w + padding) + padding, channels),
        255, "uint8",
    )
    for i, image in enumerate(pixels):
        r, c = divmod(i, columns)
        top, left = padding + r * (cell_h + padding), padding + c * (cell_w + padding)
        canvas[top : top + cell_h, left : left + cell_w] = image.repeat(scale, 0).repeat(scale, 1)
    return Image.fromarray(canvas[..., 0] if channels == 1 else canvas)


def scatter_plot(points, reference=None, size=512, extent=None):
    """A scatter plot of 2D `points` (blue) over optional `reference` points (grey)."""
    points = np.asarray(points, dtype="float64")
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"Expected 2D points [n, 2], got shape {list(points.shape)}.")
    everything = points if reference is None else np.concatenate([points, reference])
    if extent is None:
        extent = float(np.percentile(np.abs(everything), 99.5)) * 1.15 or 1.0
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    to_pixel = lambda p: ((p + extent) / (2 * extent) * (size - 1))  # noqa: E731
    draw.line([(size // 2, 0), (size // 2, size)], fill=(225, 225, 225))
    draw.line([(0, size // 2), (size, size // 2)], fill=(225, 225, 225))
    for cloud, color in ((reference, (170, 170, 170)), (points, (31, 119, 180))):
        if cloud is None:
            continue
        for x, y in to_pixel(np.asarray(cloud)):
            draw.ellipse([x - 1.5, size - 1 - y - 1.5, x + 1.5, size - 1 - y + 1.5], fill=color)
    return image


def class_rows(generate, latent_dim, classes, per_class=8, seed=0):
    """`per_class` samples of each class in `classes`, row by row, for a
    `generate(z, labels)` function. Each column shares its noise across the
    rows, so a column shows one "style" drawn as every class."""
    classes = np.asarray(classes, "int32")
    z = np.tile(latent_noise(per_class, latent_dim, seed), (len(classes), 1))
    return generate(z, np.repeat(classes, per_class))


def class_grid(generate, latent_dim, classes, per_class=8, seed=0):
    """A grid of `class_rows`: one row per class."""
    return image_grid(class_rows(generate, latent_dim, classes, per_class, seed), columns=per_class)


def before_after(inputs, outputs, columns=8):
    """A grid of translations: rows of `columns` inputs, each followed by the
    row of their outputs (white cells finish a short last row)."""
    inputs, outputs = np.asarray(inputs, "float32"), np.asarray(outputs, "float32")
    columns = min(columns, len(inputs))
    rows = []
    for start in range(0, len(inputs), columns):
        for row in (inputs[start : start + columns], outputs[start : start + columns]):
            rows.append(np.concatenate([row, np.ones((columns - len(row), *row.shape[1:]), "float32")]))
    return image_grid(np.concatenate(rows), columns=columns)


def picture(samples, reference=None):
    """The natural picture of a batch: a grid for images, a scatter for 2D vectors."""
    samples = np.asarray(samples)
    if samples.ndim == 4:
        return image_grid(samples)
    if samples.ndim == 2 and samples.shape[1] == 2:
        return scatter_plot(samples, reference)
    raise ValueError(
        f"Cannot draw samples of shape {list(samples.shape[1:])}: only images and 2D points."
    )
