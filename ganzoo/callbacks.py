"""Keras callbacks for GAN training."""

import json
import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from ganzoo import visualize


class SampleGrid(keras.callbacks.Callback):
    """Write a picture of samples from fixed noise every `every` epochs.

    Files are `<out_dir>/epoch_NNN.png` (a grid for images, a scatter plot
    for 2D data); the noise is drawn once from `seed`, so the series shows
    the same latent points improving. With `log_dir`, the pictures also go to
    TensorBoard under `samples`.
    """

    def __init__(self, out_dir, every=1, n=64, seed=0, log_dir=None):
        super().__init__()
        if every < 1 or n < 1:
            raise ValueError(f"every and n must be positive, got every={every}, n={n}.")
        self.out_dir = Path(out_dir)
        self.every, self.n, self.seed, self.log_dir = every, n, seed, log_dir
        self._writer = None

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        samples = self.model.generate(self.n, seed=self.seed)
        image = visualize.picture(samples)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        image.save(self.out_dir / f"epoch_{epoch + 1:03d}.png")
        if self.log_dir:
            if self._writer is None:
                self._writer = tf.summary.create_file_writer(os.fspath(self.log_dir))
            pixels = np.asarray(image.convert("RGB"))[None]
            with self._writer.as_default():
                tf.summary.image("samples", pixels, step=epoch + 1)
            self._writer.flush()


class HistoryFile(keras.callbacks.Callback):
    """Append each epoch's logs to a JSON file, kept across resumed runs."""

    def __init__(self, path):
        super().__init__()
        self.path = Path(path)

    def on_epoch_end(self, epoch, logs=None):
        history = json.loads(self.path.read_text()) if self.path.exists() else []
        history = [h for h in history if h["epoch"] < epoch + 1]
        history.append({"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()}})
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(history, indent=1))
        temporary.replace(self.path)
