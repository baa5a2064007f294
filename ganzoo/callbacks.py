"""Keras callbacks for GAN training."""

import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from ganzoo import loading, runs
from ganzoo.data import MIXTURES
from ganzoo.metrics import evaluation, get_extractor
from ganzoo.metrics.evaluation import MODE_COVERAGE_SAMPLES
from ganzoo.metrics.translation import domain_classifiers, evaluate_translation


class SampleGrid(keras.callbacks.Callback):
    """Write a picture of the model's outputs for fixed inputs every `every` epochs.

    Files are `<out_dir>/epoch_NNN.png`. The inputs come from the model's
    `preview_inputs` once, at the start of training (noise from `seed` for
    `n` samples; one row of `per_class` per class for conditional models;
    8 images of each domain of `dataset` for translation models), or are
    given as `inputs`; the model's `preview` draws them (a grid for images,
    a scatter plot for 2D data), so the series shows the same inputs
    improving. With `log_dir`, the pictures also go to TensorBoard under
    `samples`.
    """

    def __init__(self, out_dir, every=1, n=64, seed=0, log_dir=None, per_class=8, inputs=None, dataset=None):
        super().__init__()
        if every < 1 or n < 1 or per_class < 1:
            raise ValueError(f"every, n and per_class must be positive, got {every}, {n}, {per_class}.")
        self.out_dir = Path(out_dir)
        self.every, self.n, self.seed, self.log_dir, self.per_class = every, n, seed, log_dir, per_class
        self.inputs, self.dataset = inputs, dataset
        self._writer = None

    def on_train_begin(self, logs=None):
        if self.inputs is None:
            self.inputs = self.model.preview_inputs(n=self.n, seed=self.seed, per_class=self.per_class,
                                                    dataset=self.dataset)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        image, suffix = self.model.preview(self.inputs)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = self.out_dir / f"epoch_{epoch + 1:03d}{suffix}.png"
        with runs.disk_errors(path):
            image.save(path)
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
        runs.append_history(self.path, epoch + 1, logs)


def evaluation_samples(dataset):
    """Generated samples of in-training evaluation: the mode-coverage protocol on the mixtures, else 1,000."""
    return MODE_COVERAGE_SAMPLES if dataset in MIXTURES else 1000


class EvaluationCallback(keras.callbacks.Callback):
    """Score the generator every `every` epochs and add the numbers to the
    epoch's logs, so `History`, `HistoryFile` and `keras.callbacks.TensorBoard`
    (placed after this callback) record them.

    The real features are computed once, at the start of training; each
    evaluation streams `n` generated samples through the same extractor with
    the same noise. Arguments as in `ganzoo.metrics.evaluate`.
    """

    def __init__(self, dataset="digits", metrics=("fid", "kid"), every=5, n=1000,
                 features=None, split="test", seed=0, batch_size=250, weights=None):
        super().__init__()
        if every < 1 or n < 2:
            raise ValueError(f"every must be positive and n at least 2, got every={every}, n={n}.")
        self.dataset, self.metric_names, self.every, self.n = dataset, list(metrics), every, n
        self.features, self.split, self.seed, self.batch_size, self.weights = features, split, seed, batch_size, weights
        self._extractor = self._real = self._sampler = None

    def on_train_begin(self, logs=None):
        if self._real is not None:
            return
        shape = tuple(self.model.data_shape)
        self._extractor = get_extractor(
            self.features or evaluation.default_features(self.dataset, shape), weights=self.weights
        )
        evaluation.check_metrics(self.metric_names, self._extractor, self.dataset, self.model.num_classes)
        batches = evaluation.real_batches(self.dataset, shape, self.n, self.split, self.batch_size, self.seed)
        self._real = evaluation.extract(
            self._extractor, batches, self.n, "real", progress=False, keep_samples=any(name in evaluation.SAMPLE_METRICS for name in self.metric_names)
        )
        self._sampler = loading.as_sampler(self.model)

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every or logs is None:
            return
        fake = evaluation.generated_features(
            self._extractor, self._sampler, self.n, self.metric_names, self.batch_size, self.seed, progress=False
        )
        results = evaluation.compute_metrics(self.metric_names, self._real, fake, mixture=self.dataset, seed=self.seed,
                                             extractor_name=self._extractor.name)
        logs.update({key: float(value) for key, value in results.items()})


class LinearDecay(keras.callbacks.Callback):
    """Both optimizers' learning rates constant for the first `decay_from`
    fraction of `epochs`, then falling linearly towards zero (Zhu et al.
    2017: 100 epochs constant, 100 decaying). In epoch e of the decay, counted
    from 1, the rate is initial * (1 - e / (decay epochs + 1)), as in the
    authors' code. The rates are set at the start of each epoch from its
    number, so a resumed run continues the schedule.

    Args:
        epochs: the total epochs of the run.
        decay_from: fraction of `epochs` before the decay starts.
        initial_learning_rates: `(g, d)`; by default the optimizers' rates
            when training starts.
    """

    def __init__(self, epochs, decay_from=0.5, initial_learning_rates=None):
        super().__init__()
        if epochs < 1 or not 0 <= decay_from <= 1:
            raise ValueError(f"epochs must be positive and decay_from in [0, 1], got {epochs}, {decay_from}.")
        self.epochs, self.decay_from = int(epochs), float(decay_from)
        self.initial_learning_rates = initial_learning_rates

    def factor(self, epoch):
        """The multiplier of the initial rates in `epoch` (0-based)."""
        constant = round(self.epochs * self.decay_from)
        if epoch < constant:
            return 1.0
        return max(0.0, 1.0 - (epoch - constant + 1) / (self.epochs - constant + 1))

    def set_model(self, model):
        super().set_model(model)
        # Read before BackupAndRestore's on_train_begin restores decayed rates.
        if self.initial_learning_rates is None:
            self.initial_learning_rates = model.learning_rates()

    def on_epoch_begin(self, epoch, logs=None):
        for optimizer, rate in zip((self.model.g_optimizer, self.model.d_optimizer), self.initial_learning_rates):
            optimizer.learning_rate = rate * self.factor(epoch)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.g_optimizer.learning_rate))


class TranslationEvaluation(keras.callbacks.Callback):
    """Every `every` epochs, add the translation metrics on digits_style's
    test digits (`ganzoo.metrics.translation`) to the epoch's logs; put it
    before `HistoryFile` and `keras.callbacks.TensorBoard`."""

    def __init__(self, every=5, cache=None):
        super().__init__()
        if every < 1:
            raise ValueError(f"every must be positive, got {every}.")
        self.every, self.cache = every, cache

    def on_train_begin(self, logs=None):
        domain_classifiers(self.model.data_shape[0], self.cache)  # train them now, not mid-run

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every or logs is None:
            return
        logs.update(evaluate_translation(self.model, cache=self.cache)["metrics"])


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite during `fit`."""


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stop `fit` with `NonFiniteLossError` as soon as a loss is NaN or inf.

    It raises rather than setting `stop_training`, because a graceful stop
    still ends the epoch, and the checkpoint callbacks would then save the
    broken weights over the last good ones. Put it before them.

    Args:
        monitor: the logged losses to check.
        backup_dir: where the last good checkpoint is, named in the message.
    """

    def __init__(self, monitor=("d_loss", "g_loss"), backup_dir=None):
        super().__init__()
        self.monitor, self.backup_dir = tuple(monitor), backup_dir
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        values = {k: float(logs[k]) for k in self.monitor if k in (logs or {})}
        bad = {k: v for k, v in values.items() if not np.isfinite(v)}
        if not bad:
            return
        g, d = (f"{rate / 2:.3g}" for rate in self.model.learning_rates())
        lower = (f"half the present ones: --set g_optimizer.learning_rate={g} --set d_optimizer.learning_rate={d} "
                 f"(in Python: g_optimizer={{'learning_rate': {g}}}, d_optimizer={{'learning_rate': {d}}})")
        if self.backup_dir and self._epoch:
            advice = (f" The last good checkpoint (after epoch {self._epoch}) is kept in {self.backup_dir}: the "
                      "same command (without --force) resumes from it, which helps when one rare batch blew up. If it recurs, run "
                      f"it again with lower learning rates, {lower}: a resumed run may change them. Or drop "
                      "mixed precision and start over (--force).")
        elif self.backup_dir:
            advice = (f" No epoch had finished, so there is no checkpoint: run the same command with lower "
                      f"learning rates, {lower}, or without mixed precision.")
        else:
            advice = " To avoid it, lower the learning rates or drop mixed precision."
        raise NonFiniteLossError(
            f"{', '.join(f'{k} became {v}' for k, v in bad.items())} in epoch {self._epoch + 1}, "
            f"batch {batch + 1}; training stopped and nothing of this epoch was saved.{advice}"
        )
