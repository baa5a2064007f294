"""The base classes of every entry.

- `AdversarialModel`: what every two-player model shares: two optimizers
  (loss scaling, replica scaling), the noise state, loss trackers, export,
  and the hooks by which `ganzoo.train`, the sample grids and evaluation use
  a model without asking what kind it is.
- `GAN`: a generator from noise against a discriminator, with the one
  `train_step` and its small hooks. CycleGAN subclasses `AdversarialModel`
  with a step of its own.

Rule: discriminator state changes only inside the discriminator step.
"""

import contextlib
import functools
import inspect
import random
import threading

import numpy as np
import tensorflow as tf
import keras
from keras import ops

from ganzoo import augment as augment_lib
from ganzoo import callbacks as callbacks_lib
from ganzoo import clusters as clusters_lib
from ganzoo import data as data_lib
from ganzoo import export as export_lib
from ganzoo import losses as losses_lib
from ganzoo import networks, visualize
from ganzoo.arrays import in_batches, latent_noise, tree_slice  # noqa: F401  (re-exported)
from ganzoo.layers import CategoricalCode, ClusterCode, ImageHistoryPool
from ganzoo.samplers import Sampler

serializable = keras.saving.register_keras_serializable(package="ganzoo")
MAX_LATENT = 65536  # StyleGAN's is 512, BigGAN's 128; a larger one is a typo
MAX_SEED = 2**32 - 1  # as the command line's --seed


class AdversarialModel(keras.Model):
    """Networks trained against each other by `g_optimizer` and `d_optimizer`.

    Subclasses build their networks in `build_networks`, say which variables
    each optimizer updates, write `train_step` (with `_apply`, `replica_scaled`
    and `replica_random`), and define `serving_endpoints` and
    `exported_networks` for export. The hooks `training_data`,
    `training_callbacks`, `preview_inputs`/`preview` and `sampler` tell
    `ganzoo.train`, `SampleGrid` and evaluation how to use the model.

    Args:
        data_shape: shape of one sample, `(H, W, C)` for images or `(D,)`
            for vectors.
        network: name of a registered network builder
            (`ganzoo.networks.list_networks()`); `None` takes the class's
            `default_network`.
        network_args: keyword arguments of that network builder.
        seed: seed of the initial weights and of the training noise stream
            (`keras.random.SeedGenerator`): an integer from 0 to 2**32 - 1
            (Python's `random` would give -s and s the same weights), or
            None for fresh ones.
    """

    default_network = None
    # The kind of network builder the entry takes (`ganzoo.networks.KINDS`).
    network_kind = "unconditional"
    # Conditional entries take class labels and set `num_classes`.
    conditional = False
    num_classes = None
    latent_dim = None
    # Keys of the YAML's `train:` section this entry adds to `registry.TRAIN_KEYS`.
    train_options = ()
    # The names of the losses `train_step` logs, in the order `track` takes them.
    tracked = ("d_loss", "g_loss")

    def __init__(self, data_shape, network=None, network_args=None, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.data_shape = _as_shape(data_shape)
        self.network = network or self.default_network
        self._network_args = dict(network_args or {})
        self.seed = None if seed is None else _count("seed", seed, MAX_SEED, least=0)
        with _python_random_from(self.seed):  # a seed gives the same initial weights in any process
            self.build_networks()
        self.seed_generator = keras.random.SeedGenerator(seed)
        for name in self.tracked:
            setattr(self, f"{name}_tracker", keras.metrics.Mean(name=name))
        # The sub-networks are built from keras.Input; marking the model built
        # stops `fit` from calling `call` on a data batch to build it.
        self.built = True

    # ----------------------------------------------------------- compile
    def compile(self, g_optimizer="adam", d_optimizer="adam", loss="non_saturating", **kwargs):
        """Set the two optimizers and the adversarial loss.

        Args:
            g_optimizer, d_optimizer: optimizer instances or names; they must
                be distinct objects since each holds its own slots.
            loss: a name in `ganzoo.losses.LOSSES`.
            **kwargs: `keras.Model.compile` options such as `jit_compile`,
                `run_eagerly` or `steps_per_execution`.
        """
        for unsupported in ("optimizer", "metrics", "loss_weights"):
            if unsupported in kwargs:
                raise TypeError(f"{type(self).__name__}.compile takes g_optimizer and d_optimizer, not {unsupported!r}.")
        # optimizer=None: the default would build an unused RMSprop over all weights.
        super().compile(optimizer=None, **kwargs)
        self.g_optimizer = self._loss_scaled(keras.optimizers.get(g_optimizer))
        self.d_optimizer = self._loss_scaled(keras.optimizers.get(d_optimizer))
        if self.g_optimizer is self.d_optimizer:
            raise ValueError(
                "g_optimizer and d_optimizer must be two optimizer objects; "
                "one object would mix the slots of both networks."
            )
        self._generator_loss_fn, self._discriminator_loss_fn = losses_lib.get(loss)
        self.gan_loss = loss
        # Build the slots now, inside the caller's strategy scope: under
        # MirroredStrategy an optimizer first built inside the step fails, and
        # `.keras` loading needs the slots to exist to restore them.
        self.g_optimizer.build(self.generator_variables())
        self.d_optimizer.build(self.discriminator_variables())

    def _loss_scaled(self, optimizer):
        """Under mixed_float16, `optimizer` wrapped in a LossScaleOptimizer:
        Keras wraps only `self.optimizer`, and a GAN has two. bfloat16 has
        float32's exponent range and needs no scaling."""
        if self.dtype_policy.name != "mixed_float16" or isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
            return optimizer
        return keras.optimizers.LossScaleOptimizer(optimizer)

    def learning_rates(self):
        """`(g, d)`: the two optimizers' present learning rates."""
        return tuple(float(keras.ops.convert_to_numpy(opt.learning_rate)) for opt in (self.g_optimizer, self.d_optimizer))

    def get_compile_config(self):
        return {
            "g_optimizer": keras.optimizers.serialize(self.g_optimizer),
            "d_optimizer": keras.optimizers.serialize(self.d_optimizer),
            "loss": self.gan_loss,
        }

    def compile_from_config(self, config):
        config = dict(config)
        self.compile(
            g_optimizer=keras.optimizers.deserialize(config.pop("g_optimizer")),
            d_optimizer=keras.optimizers.deserialize(config.pop("d_optimizer")),
            **config,
        )

    # ---------------------------------------------------------- networks
    def build_networks(self):
        """Build the networks of `self.network` and set them as attributes."""
        raise NotImplementedError

    def build_network_pair(self, data_shape=None, latent_dim=None, **extra):
        """One `(generator, discriminator)` pair of `self.network` (for
        `data_shape` and `latent_dim`, default the entry's), checked to be of
        the entry's kind."""
        kind = networks.kind_of(self.network)
        if kind is not None and kind != self.network_kind:  # unknown names: `build` lists the choices
            raise ValueError(
                f"{type(self).__name__} needs {'an' if self.network_kind[0] == 'u' else 'a'} "
                f"{self.network_kind} network; {self.network!r} is {kind}. "
                f"Choose from: {', '.join(networks.list_networks(self.network_kind))}."
            )
        shape = self.data_shape if data_shape is None else data_shape
        width = self.latent_dim if latent_dim is None else latent_dim
        return networks.build(self.network, width, shape, **extra, **self._network_args)

    def discriminator_loss(self, real, fake, real_logits, fake_logits, labels=None):
        """The compiled adversarial loss of a discriminator; add penalties
        here. `labels` are the step's (cgan's classes, or the clusters of
        `real` when self-conditioned), passed when there are some and the
        override takes them (an override with four arguments gets none)."""
        return self._discriminator_loss_fn(real_logits, fake_logits)

    def generator_loss(self, fake_logits):
        """The compiled adversarial loss of a generator."""
        return self._generator_loss_fn(fake_logits)

    def generator_variables(self):
        """What `g_optimizer` updates."""
        raise NotImplementedError

    def discriminator_variables(self):
        """What `d_optimizer` updates."""
        raise NotImplementedError

    # ------------------------------------------------------ step helpers
    @property
    def metrics(self):
        return [getattr(self, f"{name}_tracker") for name in self.tracked]

    def track(self, *values):
        """Update the trackers with this step's `values` (in `tracked` order); the step's logs."""
        for tracker, value in zip(self.metrics, values):
            tracker.update_state(value)
        return self.step_logs({m.name: m.result() for m in self.metrics})

    @staticmethod
    def step_logs(logs):
        """What a train or test step returns: its logs, as rank-1 tensors under
        MultiWorkerMirroredStrategy, whose mean over workers Keras 3 takes on
        axis 0 and which fails on scalars (tensorflow/tensorflow#72388)."""
        if not isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            return logs
        return {name: tf.reshape(value, (1,)) for name, value in logs.items()}

    @staticmethod
    def replica_scaled(loss):
        """Each replica's loss is a mean over its share of the batch and the
        optimizer sums gradients over replicas: dividing by the number of
        replicas makes the sum the global-batch mean. Call inside the tape."""
        return loss / tf.distribute.get_strategy().num_replicas_in_sync

    @staticmethod
    def _gradients(optimizer, tape, scaled_loss, variables):
        # Seeding the backward pass with the optimizer's loss scale is the
        # gradient of the scaled loss: 1 normally, the dynamic scale of a
        # LossScaleOptimizer (mixed_float16), which unscales in apply_gradients.
        seed = optimizer.scale_loss(tf.ones_like(scaled_loss))
        return tape.gradient(scaled_loss, variables, output_gradients=seed)

    @classmethod
    def _apply(cls, optimizer, tape, scaled_loss, variables, extra_gradients=None):
        gradients = cls._gradients(optimizer, tape, scaled_loss, variables)
        if extra_gradients is not None:
            gradients = [g if e is None else (e if g is None else g + e) for g, e in zip(gradients, extra_gradients)]
        # None: a variable the loss does not reach (pggan's blocks not grown
        # yet); leaving it out spares Keras' warning on every trace.
        optimizer.apply_gradients([(g, v) for g, v in zip(gradients, variables) if g is not None])

    def replica_random(self, draw, batch_size, shape=()):
        """This replica's rows of `draw((global batch, *shape))`.

        The seed state is mirrored, so every replica draws the same
        global-batch values and keeps its own rows: one replica and N replicas
        see the same randomness for the same global batch.
        """
        context = tf.distribute.get_replica_context()
        replicas = context.num_replicas_in_sync if context else 1
        replica = context.replica_id_in_sync_group if context else 0
        values = draw((batch_size * replicas, *shape), seed=self.seed_generator)
        return values[replica * batch_size : (replica + 1) * batch_size]

    # ---------------------------------------------- hooks for ganzoo.train
    @classmethod
    def training_data(cls, dataset, batch_size, image_size=None, channels=None, seed=None, options=None):
        """The `tf.data` pipeline `ganzoo.train` fits on for a dataset name;
        `options` is the entry's `train:` section."""
        return data_lib.load(dataset, image_size=image_size, channels=channels, batch_size=batch_size, seed=seed,
                             with_labels=cls.conditional, skip_corrupt=(options or {}).get("skip_corrupt", False))

    def check_batch_size(self, batch_size, replicas=1):
        """Refuse, before training, a global batch the step cannot split."""

    @classmethod
    def options_from_data(cls, dataset):
        """Model options that follow from the dataset (cgan: its number of classes)."""
        return {}

    def training_callbacks(self, dataset, epochs, eval_every=None, options=None):
        """The entry's own callbacks in `ganzoo.train` (schedules, in-training
        evaluation); `eval_every` None takes the `train:` section's on the
        datasets whose evaluation needs no download."""
        return []

    def preview_inputs(self, n=64, seed=0, per_class=8, dataset=None):
        """The fixed inputs of the sample grids (drawn once per run)."""
        raise NotImplementedError

    def preview(self, inputs):
        """`(picture, file name suffix)` of the model's outputs for `preview_inputs`."""
        raise NotImplementedError

    def sampler(self):
        """The model as evaluation and `ganzoo sample` see it (`ganzoo.samplers`)."""
        raise NotImplementedError

    # ------------------------------------------------------------ export
    def serving_endpoints(self):
        """`{signature_name: (function, input_signature)}` for `export`."""
        raise NotImplementedError

    def exported_networks(self):
        """The networks whose weights the SavedModel carries."""
        raise NotImplementedError

    def restore_exported(self, weights):
        """Set the weights of `exported_networks()` from an export: a list of
        weight lists, one per network (see `ganzoo.loading.restore_pretrained`)."""
        for network, values in zip(self.exported_networks(), weights):
            network.set_weights(values)

    def export(self, filepath, overwrite=False, verbose=False, **kwargs):
        """Write a SavedModel for TF Serving; see `ganzoo.export.export_model`."""
        if kwargs:
            raise TypeError(
                f"{type(self).__name__}.export takes (filepath, overwrite=False); got {sorted(kwargs)}. "
                "The signatures come from `serving_endpoints()`."
            )
        return export_lib.export_model(self, filepath, overwrite=overwrite, verbose=verbose)

    # -------------------------------------------------- saving the noise
    # Keras saves layer variables but not SeedGenerator states; keep the noise
    # stream in `.keras` files and checkpoints as well, so a resumed run draws
    # the noise the uninterrupted run would have drawn.
    _NOISE_KEY = "noise_seed_state"

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store[self._NOISE_KEY] = keras.ops.convert_to_numpy(self.seed_generator.state.value)

    def load_own_variables(self, store):
        own = {key: store[key] for key in store.keys() if key != self._NOISE_KEY}
        if self._NOISE_KEY in store.keys():
            self.seed_generator.state.assign(store[self._NOISE_KEY])
        super().load_own_variables(own)

    # ------------------------------------------------------------ config
    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "data_shape": list(self.data_shape),
            "network": self.network,
            "network_args": dict(self._network_args),
            "seed": self.seed,
        }

    @property
    def network_args(self):
        return dict(self._network_args)


@serializable
class GAN(AdversarialModel):
    """A generator and a discriminator trained against each other by `fit`.

    Each `train_step` makes `d_steps` discriminator updates (the k of
    Goodfellow et al. 2014, Algorithm 1), each on fresh noise and the step's
    real batch, then one generator update. Subclasses override the smallest
    hook that does the job:

    - `unpack_batch(data)`: `(samples, labels or None)` from what the
      dataset yields.
    - `fake_samples(batch_size, labels)` / `discriminate(samples, labels)`:
      how the networks are called; conditional entries feed them labels.
    - `discriminator_loss(real, fake, real_logits, fake_logits, labels=None)`:
      add penalties here (e.g. a gradient penalty, with `penalised_critic`);
      `labels` is passed when the step has labels (cgan, self-conditioning).
    - `generator_loss(fake_logits)`.
    - `after_discriminator_update()`: e.g. weight clipping.
    - `serving_endpoints()` / `exported_networks()`: what `export` writes.
    - `clone_generator()`: the generator's twin that holds its moving average.

    Stabilisers every entry can turn on (YAML `model:` or overrides):

    - `ema_decay`: sample, evaluate and export with an exponential moving
      average of G's weights (Karras et al. 2018; Yazici et al. 2019,
      arXiv:1806.04498); the raw G keeps training.
    - `augment`: DiffAugment of every D input, real and fake, in both steps
      (`ganzoo.augment`); with `ada_target`, ADA's adaptive probability.
    - `r1_weight`, `r1_every`: the R1 penalty on real data, lazily every k
      D steps (`ganzoo.losses.r1_penalty`).
    - `discriminators`: an ensemble of N independently initialised
      discriminators, each updated on its own loss; G's loss combines
      theirs (`ensemble`: their mean, or GMAN's softmax-weighted mean,
      Durugkar et al. 2016, arXiv:1611.01673).
    - `pack`: PacGAN's packing (Lin et al. 2018, arXiv:1712.04086): D
      judges m samples of a kind at once, concatenated on the last axis.
    - `snapshots`, `snapshot_every`, `snapshot_weight`: a history of
      discriminators: every K generator steps a frozen copy of D (in turn
      of each D of an ensemble) replaces the oldest of S, and G must fool
      them too.
    - `pool_size`: D's fakes pass through a history pool of past fakes
      (Shrivastava et al. 2017; CycleGAN's pool, the same code).
    - `d_until_accuracy`: D trains until it is reliable: up to `d_steps`
      updates per G step, stopping once its accuracy on a step's batch
      reaches the target; each update on a real batch of its own.
    - `info_categories`, `info_weight`: InfoGAN's categorical code (Chen
      et al. 2016, arXiv:1606.03657): the first K entries of z pick one of
      K categories, and G and an auxiliary classifier Q (D's architecture
      with K outputs, trained with G) minimise Q's cross-entropy in reading
      the category back off the sample. G must then draw K kinds it can
      tell apart, which pulls samples off the blends between modes.
    - `clusters`: self-conditioning (Liu et al. 2020, arXiv:2006.10728;
      `ganzoo.clusters`): k-means on the training images gives every real
      image a cluster id, G and a projection D are conditioned on it as in
      cgan, and sampling draws the cluster from z's first entry with the
      clusters' frequencies, so the model still takes noise alone.

    Args:
        data_shape: shape of one sample, `(H, W, C)` for images or `(D,)`
            for vectors.
        latent_dim: size of the noise vector z ~ N(0, I).
        network: name of a registered generator/discriminator pair
            (`ganzoo.networks.list_networks()`); `None` takes the class's
            `default_network`.
        network_args: keyword arguments of that network builder.
        d_steps: discriminator updates per generator update; with
            `d_until_accuracy`, the most.
        d_until_accuracy: None, or the accuracy (on the real and fake
            samples of a D step, before its update) at which D stops
            updating before `d_steps`; at least one update per G step.
            Each `train_step` batch is then split into `d_steps` real
            batches, rows i, i + d_steps, i + 2 d_steps, ... for the i-th
            update (so `batch_size` is d_steps times what each update and
            the G step see). The number of updates made is logged as
            `d_steps_taken`.
        seed: seed of the initial weights and of the training noise stream
            (an integer from 0 to 2**32 - 1), or None for fresh ones.
        ema_decay: decay of the generator's moving average, warmed up as
            min(decay, (1 + t) / (10 + t)) after t generator steps; None or
            0: no average.
        augment: DiffAugment transforms, e.g. `"color,translation,cutout"`
            (`ganzoo.augment.TRANSFORMS`); None: none.
        augment_probability: the probability of each transform per sample;
            in adaptive mode its starting value.
        ada_target: adaptive mode: the target of E[sign(D(real))]; above it
            p rises, below it falls. None: p stays fixed.
        ada_images: images shown over which p may move from 0 to 1.
        r1_weight: gamma of the R1 penalty; 0: none.
        r1_every: apply R1 every this many D steps, weighted by it (lazy).
        discriminators: how many discriminators judge (1: the usual GAN).
        ensemble: how G's losses against them combine: "mean", or
            "softmax" (sum of softmax(lambda * L_i) * L_i, GMAN's soft max).
        ensemble_lambda: GMAN's lambda (0: the mean; large: the hardest D).
        pack: PacGAN's m: D sees groups of m real or m fake samples,
            concatenated on the last axis; each replica's batch must be a
            multiple of m.
        snapshots: how many frozen past discriminators G must also fool
            (0: none).
        snapshot_every: generator steps between snapshots.
        snapshot_weight: G's loss is (1 - w) * its loss against the live
            discriminators + w * the mean of its losses against the
            snapshots taken so far (w = 0 until the first).
        pool_size: fakes kept by D's history pool (0: none); D's fake batch
            is half fresh, half from the pool once it is full.
        info_categories: K of InfoGAN's categorical code (0: none); at
            most `latent_dim - 1`.
        info_weight: lambda of InfoGAN's L_I term in G's loss.
        clusters: K of self-conditioning (0: none); fitted by `fit_clusters`,
            which the first `fit` calls on its data.
        cluster_embedding: width of the cluster code the generator reads
            beside z (with `clusters`); it widens G's input layer.
    """

    default_network = "mlp"
    tracked = ("d_loss", "g_loss", "d_real", "d_fake")
    # False where D changes shape during training (pggan): no snapshots or pool.
    fixed_discriminator = True

    def __init__(self, data_shape, latent_dim=100, network=None, network_args=None, d_steps=1, seed=None,
                 ema_decay=None, augment=None, augment_probability=1.0, ada_target=None, ada_images=20_000,
                 r1_weight=0.0, r1_every=1, discriminators=1, ensemble="mean", ensemble_lambda=1.0, pack=1,
                 snapshots=0, snapshot_every=1000, snapshot_weight=0.5, pool_size=0, d_until_accuracy=None,
                 info_categories=0, info_weight=1.0, clusters=0, cluster_embedding=clusters_lib.EMBEDDING,
                 **kwargs):
        self.latent_dim = _count("latent_dim", latent_dim, MAX_LATENT)  # read by build_networks
        self.d_steps = _count("d_steps", d_steps, 1000)
        self.discriminator_count = _count("discriminators", discriminators, 64)  # read by build_networks
        self.pack = _count("pack", pack, 64)  # read by build_networks
        self.snapshot_count = _count("snapshots", snapshots, 64, least=0)  # read by build_networks
        self.snapshot_every = _count("snapshot_every", snapshot_every, 10**9)
        self.snapshot_weight = _fraction("snapshot_weight", snapshot_weight)
        self.pool_size = _count("pool_size", pool_size, 10_000, least=0)  # rewritten every D step
        if self.pool_size and self.conditional:
            raise ValueError("pool_size keeps fakes without their labels: it is for unconditional entries.")
        if (self.pool_size or self.snapshot_count) and not self.fixed_discriminator:
            raise ValueError(
                f"{type(self).__name__} grows its discriminator during training: a snapshot or a pooled fake of an "
                "earlier resolution would be judged at the wrong one. Use snapshots=0 and pool_size=0 with it."
            )
        if d_until_accuracy is not None and not (isinstance(d_until_accuracy, (int, float))
                                                 and not isinstance(d_until_accuracy, bool) and 0 < d_until_accuracy <= 1):
            raise ValueError(f"d_until_accuracy must lie in (0, 1] (the notes' 0.8) or be None, got {d_until_accuracy!r}.")
        self.d_until_accuracy = None if d_until_accuracy is None else float(d_until_accuracy)
        if self.d_until_accuracy is not None:
            self.tracked = (*type(self).tracked, "d_steps_taken")
        if ensemble not in ENSEMBLES:
            raise ValueError(f"ensemble must be one of {', '.join(ENSEMBLES)}, got {ensemble!r}.")
        self.ensemble = ensemble
        self.ensemble_lambda = _non_negative("ensemble_lambda", ensemble_lambda)
        self.ema_decay = _fraction("ema_decay", ema_decay or 0.0, upper_open=True)
        self.augment = ",".join(augment_lib.parse_policy(augment)) or None
        self.augment_probability = _fraction("augment_probability", augment_probability)
        if ada_target is not None and not (isinstance(ada_target, (int, float)) and -1 < ada_target < 1):
            raise ValueError(f"ada_target must lie in (-1, 1) (ADA: 0.6) or be None, got {ada_target!r}.")
        self.ada_target = None if ada_target is None else float(ada_target)
        self.ada_images = _count("ada_images", ada_images, 10**9)
        self.r1_weight = _non_negative("r1_weight", r1_weight)
        self.r1_every = _count("r1_every", r1_every, 10_000)
        self.info_categories = _count("info_categories", info_categories, self.latent_dim - 1, least=0)
        if self.info_categories == 1:
            raise ValueError("info_categories=1 is a code with one value, which says nothing: use 0 (off) or 2 or more.")
        if self.info_categories and (self.conditional or not self.fixed_discriminator):
            raise ValueError(
                f"info_categories adds a classifier of D's architecture that reads single unlabelled samples; "
                f"{type(self).__name__} {'takes labels' if self.conditional else 'grows its discriminator'}. "
                "Use it with an unconditional entry of fixed resolution (dcgan, lsgan, sngan, wgan, wgan_gp)."
            )
        self.info_weight = _non_negative("info_weight", info_weight)
        self.clusters = _count("clusters", clusters, 10_000, least=0)  # read by build_networks
        self.cluster_embedding = _count("cluster_embedding", cluster_embedding, 4096)  # read by build_networks
        if self.clusters == 1:
            raise ValueError("clusters=1 puts every image in one cluster, which conditions on nothing: "
                             "use 0 (off) or 2 or more.")
        if self.clusters:
            clashing = [name for name, on in [
                ("a conditional entry", self.conditional),
                ("pack", self.pack > 1), ("pool_size", self.pool_size), ("discriminators", self.discriminator_count > 1),
                ("snapshots", self.snapshot_count), ("info_categories", self.info_categories)] if on]
            if clashing:
                raise ValueError(f"clusters (self-conditioning) does not combine with {', '.join(clashing)}: "
                                 "turn one of them off.")
        if self.info_categories:
            self.tracked = (*self.tracked, "info_loss")
        if (self.ada_target is not None or augment_probability != 1.0) and not self.augment:
            raise ValueError("ada_target and augment_probability need augment=..., e.g. augment='translation,cutout'.")
        super().__init__(data_shape, network=network, network_args=network_args, seed=seed, **kwargs)
        if self.augment and len(self.data_shape) != 3:
            raise ValueError(f"augment transforms images (H, W, C); data_shape {self.data_shape} is not one.")
        if self.r1_weight and self.discriminator_has_batch_norm():
            raise ValueError(
                "R1 penalises D's gradient at each real sample, which batch norm mixes across the batch; "
                "use network_args={'discriminator_norm': 'spectral'}, 'layer' or None with r1_weight."
            )
        if self.ema_decay:
            self.ema_generator = self.clone_generator()
            self.ema_generator.set_weights(self.generator.get_weights())
            self.ema_generator.trainable = False
        if self.snapshot_count:
            self.snapshots_taken = self.add_weight(
                shape=(), initializer="zeros", dtype="int32", trainable=False, name="snapshots_taken",
                aggregation="only_first_replica",
            )
            # Training steps made; not the optimizer's count, which a loss-scale
            # optimizer holds still on a step it skips for an overflow.
            self.snapshot_clock = self.add_weight(
                shape=(), initializer="zeros", dtype="int32", trainable=False, name="snapshot_clock",
                aggregation="only_first_replica",
            )
        if self.pool_size:
            self.fake_pool = ImageHistoryPool(self.data_shape, self.pool_size,
                                              seed=None if self.seed is None else self.seed + 1, name="fake_pool")
        if self.clusters:
            self.add_cluster_state()
        if self.augment:
            # The probability ADA tunes, saved with the model; every replica
            # computes the same value, so any copy will do.
            self.augment_p = self.add_weight(
                shape=(), initializer=keras.initializers.Constant(self.augment_probability), dtype="float32",
                trainable=False, name="augment_probability", aggregation="only_first_replica",
            )

    # ------------------------------------------------------------- hooks
    def build_networks(self):
        """Build the networks of `self.network` and set them as attributes
        (`self.generator`, `self.discriminator`). With an ensemble or
        packing, `self.discriminator` is a `Judges` switch over them."""
        extra = {"num_classes": self.num_classes} if self.conditional else {}
        if self.clusters:
            self.generator, plain = self.build_self_conditioned_pair()
        else:
            self.generator, plain = self.build_network_pair(**extra)
        self.add_info_code()
        if self.pack == 1 and self.discriminator_count == 1 and not self.snapshot_count:
            self.discriminator = plain
            return
        if self.pack > 1 and self.conditional:
            raise ValueError("pack groups samples without their labels: it is for unconditional entries.")
        shape = (*self.data_shape[:-1], self.data_shape[-1] * self.pack)
        members = [plain] if self.pack == 1 else []
        while len(members) < self.discriminator_count:
            member = self.build_network_pair(data_shape=shape, **extra)[1]
            if members:
                _initialise_anew(member, [self.seed or 0, len(members)])
            members.append(member)
        if self.pack > 1:
            members = [Packed(member, self.pack, name=f"packed_{member.name}") for member in members]
        for index in range(self.snapshot_count):  # frozen: written only by `take_snapshot`
            snapshot = self.build_network_pair(data_shape=shape, **extra)[1]
            if self.pack > 1:
                snapshot = Packed(snapshot, self.pack)
            snapshot.trainable = False
            members.append(snapshot)
        self.discriminator = members[0] if len(members) == 1 else Judges(members, name="discriminators")

    def build_self_conditioned_pair(self):
        """With `clusters`: G(z, k) and D(x, k), conditioned on the cluster k
        (`ganzoo.clusters.conditioned_pair`); G's input is wider by the
        cluster embedding."""
        pair = self.build_network_pair(latent_dim=self.latent_dim + self.cluster_embedding)
        return clusters_lib.conditioned_pair(*pair, self.latent_dim, self.clusters, self.cluster_embedding)

    def cluster_sampler_for(self, generator, name):
        """z -> images: `generator` (a G(z, k)) behind the code that draws k from z."""
        z = keras.Input((self.latent_dim,), name="z")
        return keras.Model(z, generator([z, self.cluster_code(z)]), name=name)

    def add_info_code(self):
        """With `info_categories`: G reads its code off z (`CategoricalCode`),
        and `self.info_network` is Q, D's architecture with K logits in place
        of its one, initialised anew."""
        if not self.info_categories:
            return
        z = keras.Input((self.latent_dim,), name="z")
        self.info_code = CategoricalCode(self.info_categories, name="code")
        self.generator = keras.Model(z, self.generator(self.info_code(z)), name="generator")
        body = self.build_network_pair()[1]
        _initialise_anew(body, [self.seed or 0, 1000])
        # Q reads what D's logit layer reads: D's features, its own weights.
        logits = keras.layers.Dense(self.info_categories, dtype="float32", name="code_logits")(networks.features(body))
        self.info_network = keras.Model(body.inputs, logits, name="info_network")

    def add_cluster_state(self):
        """Self-conditioning's state: the centroids that assign real images to
        clusters, whether they are fitted, and the z -> images networks that
        sample (G and its average behind one `ClusterCode`)."""
        self.cluster_centroids = self.add_weight(shape=(self.clusters, clusters_lib.view_size(self.data_shape)),
                                                 initializer="zeros", trainable=False, name="cluster_centroids")
        self.clusters_fitted = self.add_weight(shape=(), initializer="zeros", dtype="int32", trainable=False,
                                               name="clusters_fitted")
        self.cluster_code = ClusterCode(self.clusters, name="cluster_code")
        self.cluster_sampler = self.cluster_sampler_for(self.generator, "sampler")
        if self.ema_decay:
            self.ema_cluster_sampler = self.cluster_sampler_for(self.ema_generator, "ema_sampler")

    def fit_clusters(self, data, max_images=clusters_lib.MAX_IMAGES):
        """Fit self-conditioning's k-means to up to `max_images` images of
        `data` (an array or a `tf.data.Dataset` of batches): the centroids
        that label real images, and the frequencies sampling draws with."""
        if isinstance(data, tf.data.Dataset):
            views, count = [], 0
            for batch in data:
                images = self._unpack(batch)[0]
                views.append(clusters_lib.view(images).numpy())
                count += len(views[-1])
                if count >= max_images:
                    break
            views = np.concatenate(views)[:max_images] if views else np.zeros((0, 1))
        elif isinstance(data, np.ndarray) or tf.is_tensor(data):
            views = clusters_lib.view(data[:max_images]).numpy()
        else:
            raise TypeError(f"fit_clusters takes an array of images or a tf.data.Dataset, got {type(data).__name__}.")
        centroids, frequencies = clusters_lib.fit(views, self.clusters, seed=self.seed or 0)
        self.cluster_centroids.assign(centroids)
        self.cluster_code.set_frequencies(frequencies)
        self.clusters_fitted.assign(1)

    def fit(self, x=None, *args, **kwargs):
        """`keras.Model.fit`; with `clusters`, the first fit first fits the clusters to `x`."""
        if self.clusters and not int(self.clusters_fitted.numpy()):
            if getattr(self, "_sampler_from_export", False):
                raise ValueError(
                    "This self-conditioned model was restored from an export, which holds the generator and the "
                    "clusters' frequencies but not the centroids that label real images: fitting them anew would "
                    "renumber the clusters under the generator. Continue its run instead "
                    "(`ganzoo train NAME --out RUN --resume`, or ganzoo.load_model(RUN/model.keras)).")
            self.fit_clusters(x)
        return super().fit(x, *args, **kwargs)

    def cluster_labels(self, images):
        """The cluster of each image: its nearest centroid."""
        return clusters_lib.nearest(clusters_lib.view(images), self.cluster_centroids)

    def labels_of(self, real, labels=None):
        """`labels`; or, self-conditioned and given images alone (a step
        called outside `fit`, whose batches come labelled by `unpack_batch`),
        their clusters."""
        if self.clusters and labels is None:
            return self.cluster_labels(real)
        return labels

    def info_loss(self, z, fake):
        """InfoGAN's L_I up to the constant H(c): Q's cross-entropy in reading
        the code of `z` off the samples `fake` drawn from it."""
        code = self.info_code.index(z)
        logits = self.info_network(fake, training=True)
        return ops.mean(keras.losses.sparse_categorical_crossentropy(code, logits, from_logits=True))

    @property
    def discriminators(self):
        """Every discriminator that trains (each packed, with `pack`)."""
        return self._judges()[: self.discriminator_count]

    @property
    def snapshots(self):
        """The frozen past discriminators, by slot (a ring: slot t % S took the t-th snapshot)."""
        return self._judges()[self.discriminator_count :]

    def _judges(self):
        return list(self.discriminator.members) if isinstance(self.discriminator, Judges) else [self.discriminator]

    @contextlib.contextmanager
    def judged_by(self, index):
        """Within it, calls of `self.discriminator` go to discriminator
        `index`, so every hook (`discriminate`, penalties) works on that one.
        Per thread: MirroredStrategy traces each replica in its own thread."""
        if not isinstance(self.discriminator, Judges):
            yield
            return
        previous = self.discriminator.active
        self.discriminator.active = index
        try:
            yield
        finally:
            self.discriminator.active = previous

    def generator_variables(self):
        """G's, and with `info_categories` Q's, which trains with G."""
        info = self.info_network.trainable_variables if self.info_categories else []
        return [*self.generator.trainable_variables, *info]

    def discriminator_variables(self):
        return self.discriminator.trainable_variables

    def unpack_batch(self, data):
        """`(samples, labels)` from a dataset element: `x`, `(x,)`, `(x, y)`,
        `{"image": x, "label": y}`; labels are None when there are none.
        With `clusters`, the labels are the samples' clusters."""
        images, labels = self._unpack(data)
        if self.clusters:
            return images, self.cluster_labels(images)
        return images, labels

    @staticmethod
    def _unpack(data):
        labels = None
        if isinstance(data, dict):
            images = next((data[k] for k in ("image", "images", "x") if k in data), None)
            if images is None:
                raise ValueError(f"Cannot find the images in a batch with keys {sorted(data)}.")
            labels = next((data[k] for k in ("label", "labels", "y") if k in data), None)
            return images, labels
        if isinstance(data, (tuple, list)):
            return data[0], (data[1] if len(data) > 1 else None)
        return data, labels

    def fake_samples(self, batch_size, labels=None, training=True):
        """The generator's output for this replica's share of fresh noise;
        with `clusters`, for `labels` (default: clusters drawn from the noise)."""
        return self.generator(self.conditioned_noise(self.sample_noise(batch_size), labels), training=training)

    def conditioned_noise(self, noise, labels=None):
        """What G reads for `noise`: the noise alone; with `clusters`,
        `[noise, labels]` (default: the clusters the noise draws)."""
        if not self.clusters:
            return noise
        return [noise, self.cluster_code(noise) if labels is None else labels]

    def discriminate(self, samples, labels=None, training=True):
        """The discriminator's logits for samples (and, if conditional or
        self-conditioned, their labels)."""
        if self.clusters:
            if labels is None:
                raise ValueError("A self-conditioned discriminator judges (sample, cluster) pairs: pass labels.")
            return self.discriminator([samples, labels], training=training)
        return self.discriminator(samples, training=training)

    def after_discriminator_update(self):
        """Called after each discriminator update (e.g. to clip weights)."""

    def discriminator_has_batch_norm(self):
        """Whether D (nested models included) has batch norm, which per-sample
        gradient penalties (R1, WGAN-GP's) cannot have: it mixes the samples."""
        return any(isinstance(layer, keras.layers.BatchNormalization) for layer in _all_layers(self.discriminator))

    def clone_generator(self):
        """A new generator of the same architecture (the moving average's holder)."""
        return keras.models.clone_model(self.generator)

    @property
    def sampling_generator(self):
        """What samples, grids, evaluation and export use: the moving average
        if there is one; with `clusters`, behind the code that draws clusters."""
        if self.clusters:
            return self.ema_cluster_sampler if self.ema_decay else self.cluster_sampler
        return self.ema_generator if self.ema_decay else self.generator

    def augmented(self, samples):
        """`samples` as D sees them in training: DiffAugment'ed if `augment` is set."""
        if not self.augment:
            return samples

        def uniform(shape):
            return self.replica_random(keras.random.uniform, tf.shape(samples)[0], shape)

        return augment_lib.augment(samples, self.augment, self.augment_p, uniform)

    def penalised_critic(self, labels=None):
        """`critic(x, training)` for a penalty at points between or beside the
        samples: D as its loss reads them, on augmented inputs with `augment`
        (a critic penalised on plain inputs is unconstrained on the augmented
        ones it is trained on) and judged with `labels`."""

        def critic(x, training):
            return self.discriminate(self.augmented(x), labels, training=training)

        return critic

    def real_penalty(self, real, labels=None, weight=None):
        """The R1 penalty of `real` with gamma `weight` (default `r1_weight`).

        On the real data as given (the paper's definition), with D in
        training mode but stateless: the penalty's extra D pass neither
        draws noise nor moves D's state, so whether a lazy step runs it
        changes nothing else.
        """
        labels = self.labels_of(real, labels)

        def critic(x, training):
            with keras.StatelessScope():
                return self.discriminate(x, labels, training=training)

        return losses_lib.r1_penalty(critic, real, weight=self.r1_weight if weight is None else weight,
                                     group=self.pack)

    def lazy_penalty_gradients(self, real, labels=None):
        """Gradients of k * R1 for D's variables on every k-th D step, zeros
        between (StyleGAN2's lazy regularisation, Karras et al. 2020).

        The gradient is taken inside the branch rather than through it: the
        gradient of a `tf.cond` holding a double backward trips Grappler's
        remapper (an error line per trace), and an optimizer update inside a
        branch would be a cross-replica merge inside control flow, which
        MirroredStrategy refuses (as it refuses synchronised batch norm
        there, which R1 rules out).
        """
        variables = self.discriminator_variables()

        def gradients():
            with tf.GradientTape() as tape:
                penalty = 0.0
                for index in range(self.discriminator_count):  # each D of an ensemble its own
                    with self.judged_by(index):
                        penalty += self.real_penalty(real, labels, self.r1_weight * self.r1_every)
                scaled = self.replica_scaled(penalty)
            found = self._gradients(self.d_optimizer, tape, scaled, variables)
            return [tf.zeros_like(v) if g is None else tf.convert_to_tensor(g) for g, v in zip(found, variables)]

        def zeros():
            return [tf.zeros_like(v) for v in variables]

        # No cross-replica step inside the branch: R1 refuses batch norm in D,
        # and its D pass is stateless.
        return tf.cond(self.d_optimizer.iterations % self.r1_every == 0, gradients, zeros)

    def sample_noise(self, batch_size):
        """This replica's share of the latent noise z ~ N(0, I) for a global batch."""
        return self.replica_random(keras.random.normal, batch_size, (self.latent_dim,))

    # ------------------------------------------------------------- steps
    def discriminator_step(self, real, labels=None):
        labels = self.labels_of(real, labels)
        fake = self.fake_samples(tf.shape(real)[0], labels)
        if self.pool_size:
            fake = self.fake_pool(ops.stop_gradient(fake))
        with tf.GradientTape() as tape:
            # With an ensemble, each D's own loss: their sum gives every D
            # the gradient of its loss alone (their variables are disjoint).
            total, logits = 0.0, []
            for index in range(self.discriminator_count):
                with self.judged_by(index):
                    real_logits = self.discriminate(self.augmented(real), labels)
                    fake_logits = self.discriminate(self.augmented(fake), labels)
                    loss = self.discriminator_loss(real, fake, real_logits, fake_logits,
                                                   **_labelled(self.discriminator_loss, labels))
                    if self.r1_weight and self.r1_every == 1:
                        loss += self.real_penalty(real, labels)
                total += loss
                logits.append((real_logits, fake_logits))
            scaled_loss = self.replica_scaled(total)
        lazy = None
        if self.r1_weight and self.r1_every > 1:
            lazy = self.lazy_penalty_gradients(real, labels)
        self._apply(self.d_optimizer, tape, scaled_loss, self.discriminator_variables(), lazy)
        self.after_discriminator_update()
        real_logits, fake_logits = logits[0]  # what ADA and the logs read: the first D's
        return total / self.discriminator_count, real_logits, fake_logits

    def generator_step(self, batch_size, labels=None):
        """One G update; returns G's adversarial loss and, with
        `info_categories`, L_I (else None). Without labels (outside `fit`),
        a self-conditioned G draws clusters as sampling does."""
        if self.clusters and labels is None:
            labels = self.cluster_code(self.sample_noise(batch_size))
        with tf.GradientTape() as tape:
            if self.info_categories:  # the noise too, whose code Q must read back
                z = self.sample_noise(batch_size)
                raw = self.generator(z, training=True)
            else:
                raw = self.fake_samples(batch_size, labels)
            # Augmented outside the scope below, which would also drop the
            # noise stream's advance and repeat these draws next time.
            fake = self.augmented(raw)
            # D runs in training mode, as in the discriminator step, but the
            # state it would update (batch-norm statistics, spectral norm's
            # power iteration) is dropped: D changes only in its own step.
            with keras.StatelessScope():
                judged = []
                for index in range(self.discriminator_count + self.snapshot_count):
                    with self.judged_by(index):
                        judged.append(self.generator_loss(self.discriminate(fake, labels)))
            loss = combine_ensemble(judged[: self.discriminator_count], self.ensemble, self.ensemble_lambda)
            if self.snapshot_count:
                loss = self.with_snapshots(loss, judged[self.discriminator_count :])
            total, info = loss, None
            if self.info_categories:  # on the samples as drawn: Q reads no augmented copy
                info = self.info_loss(z, raw)
                total = ops.cast(loss, "float32") + self.info_weight * info
            scaled_loss = self.replica_scaled(total)
        self._apply(self.g_optimizer, tape, scaled_loss, self.generator_variables())
        return loss, info

    def train_step(self, data):
        real, labels = self.unpack_batch(data)
        taken = None  # D updates made, with the reliable-D rule
        if self.d_until_accuracy is None:
            for _ in range(self.d_steps):
                d_loss, real_logits, fake_logits = self.discriminator_step(real, labels)
        else:
            real, labels, (d_loss, real_logits, fake_logits), taken = self.reliable_discriminator_steps(real, labels)
        if self.ada_target is not None:  # counting the real images D saw
            self.adapt_augmentation(real_logits, tf.shape(real)[0] * (1 if taken is None else taken))
        g_loss, info_loss = self.generator_step(tf.shape(real)[0], labels)
        if self.ema_decay:
            self.update_average()
        if self.snapshot_count:
            self.take_snapshot()
        extra = ([] if taken is None else [taken]) + ([info_loss] if self.info_categories else [])
        logs = self.track(d_loss, g_loss, real_logits, fake_logits, *extra)
        if self.ada_target is not None:  # the probability ADA tunes
            logs = {**logs, **self.step_logs({"augment_p": ops.convert_to_tensor(self.augment_p)})}
        return logs

    def check_batch_size(self, batch_size, replicas=1):
        """Packing groups m samples and the reliable-D rule splits the batch
        into d_steps: each replica's share must divide."""
        size, options = self.batch_multiple()
        if size > 1 and batch_size % (size * replicas):
            raise ValueError(
                f"{options} needs each replica's batch to be a multiple of {size}, but batch_size "
                f"{batch_size} on {replicas} replica(s) is not. Choose a batch size that is a multiple of "
                f"{size * replicas}, e.g. {size * replicas * max(1, round(batch_size / (size * replicas)))}."
            )

    def batch_multiple(self):
        """What each replica's batch must be a multiple of, and the options that say so."""
        splits = self.d_steps if self.d_until_accuracy is not None else 1
        named = [f"pack={self.pack}"] * (self.pack > 1) + [f"d_until_accuracy with d_steps={splits}"] * (splits > 1)
        return self.pack * splits, " and ".join(named)

    def reliable_discriminator_steps(self, real, labels=None):
        """D updates until its accuracy on a step's global batch (before
        that step's update) reaches `d_until_accuracy`, at most `d_steps`.

        Returns the first real batch (and labels), the last update's
        `(d_loss, real_logits, fake_logits)` and the number of updates.
        Without a distribution strategy this is a `tf.while_loop` with the
        update inside. Under one it cannot be (MirroredStrategy refuses the
        cross-replica merge of an optimizer update inside control flow, on
        one replica too), so all `d_steps`
        updates run and each one past the stop is put back (every variable
        it may change): the loop's result, at the cost of the full count.

        The accuracy is measured on each update's own batch just before
        that update, which is still made: the rule stops after the first
        update whose batch D already judged well enough. With an ensemble,
        the first D's accuracy decides.
        """
        k = self.d_steps
        real = _check_divisible(real, k, f"d_until_accuracy with d_steps={k}")
        chunks = [_strided(real, k)] + ([_strided(labels, k)] if labels is not None else [])

        def chunk(i):
            return [ops.take(c, i, axis=1) for c in chunks] + ([None] if labels is None else [])

        def step(i):
            outputs = self.discriminator_step(*chunk(i))
            accuracy = losses_lib.discriminator_accuracy(outputs[1], outputs[2], self.gan_loss)
            context = tf.distribute.get_replica_context()
            if context is not None and context.num_replicas_in_sync > 1:
                accuracy = context.all_reduce("mean", accuracy)
            return outputs, accuracy >= self.d_until_accuracy

        first = chunk(0)
        outputs, reliable = step(0)
        if not tf.distribute.has_strategy():  # a strategy merges updates across replicas, even of one
            def more(i, reliable, outputs):
                return ops.logical_and(i < k, ops.logical_not(reliable))

            def body(i, reliable, outputs):
                outputs, reliable = step(i)
                return i + 1, reliable, outputs

            taken, _, outputs = tf.while_loop(more, body, (tf.constant(1), reliable, outputs))
            return first[0], first[1], outputs, taken
        taken, state = tf.constant(1), self.discriminator_state()
        for i in range(1, k):
            saved = [_read_now(v) for v in state]
            new_outputs, new_reliable = step(i)
            keep = ops.logical_not(reliable)
            for variable, value in zip(state, saved):
                variable.assign(ops.where(keep, variable, value))
            outputs = tuple(ops.where(keep, n, o) for n, o in zip(new_outputs, outputs))
            taken += ops.cast(keep, "int32")
            reliable = ops.logical_or(reliable, new_reliable)
        return first[0], first[1], outputs, taken

    def discriminator_state(self):
        """Every variable a discriminator step may change: all of the
        model's (G's batch-norm statistics move too, as G draws the fakes
        in training mode; dropout and noise states advance) and D's
        optimizer's. More than it needs, so that nothing is missed."""
        state = {id(v): v for v in [*self.variables, *self.d_optimizer.variables]}
        return list(state.values())

    def compile(self, g_optimizer="adam", d_optimizer="adam", loss="non_saturating", **kwargs):
        super().compile(g_optimizer=g_optimizer, d_optimizer=d_optimizer, loss=loss, **kwargs)
        if self.d_until_accuracy is not None and self.gan_loss == "wasserstein":
            raise ValueError(
                "d_until_accuracy needs a boundary between real and fake, which a Wasserstein critic's output "
                "(with its arbitrary offset) has not. Use a fixed d_steps with this loss."
            )
        if self.discriminator_count > 1 and self.ensemble == "softmax" and self.gan_loss in ("wasserstein", "hinge"):
            raise ValueError(
                f"ensemble='softmax' weights each critic by G's loss against it, which under the {self.gan_loss} "
                "loss has an arbitrary offset per critic. Use ensemble='mean' with this loss."
            )
        if self.ada_target is not None and self.gan_loss == "wasserstein":
            raise ValueError(
                "ada_target steers p by E[sign(D(real))], which means nothing for a Wasserstein critic, "
                "whose output has an arbitrary offset. Use a fixed augment_probability with this loss."
            )

    def adapt_augmentation(self, real_logits, batch_size):
        """ADA's rule: p += sign(r_t - target) * (images this step) / ada_images,
        kept in [0, 1], with r_t over the global batch of the last D step."""
        r_t = augment_lib.overfitting(real_logits, self.gan_loss)
        context = tf.distribute.get_replica_context()
        replicas = context.num_replicas_in_sync if context else 1
        if context is not None and replicas > 1:  # the global batch's mean, on every replica
            r_t = context.all_reduce("mean", r_t)
        step = ops.cast(batch_size * replicas, "float32") / self.ada_images
        self.augment_p.assign(ops.clip(self.augment_p + ops.sign(r_t - self.ada_target) * step, 0.0, 1.0))

    def with_snapshots(self, live_loss, snapshot_losses):
        """(1 - w) * `live_loss` + w * the mean of the losses against the
        snapshots taken so far; `live_loss` alone before the first."""
        held = ops.minimum(self.snapshots_taken, self.snapshot_count)
        present = ops.arange(self.snapshot_count) < held
        losses = ops.stack([ops.cast(l, "float32") for l in snapshot_losses])
        taken = ops.cast(held, "float32")
        history = ops.sum(ops.where(present, losses, 0.0)) / ops.maximum(taken, 1.0)  # where, not 0 * inf
        weight = ops.where(taken > 0, self.snapshot_weight, 0.0)
        return (1.0 - weight) * ops.cast(live_loss, "float32") + weight * history

    def take_snapshot(self):
        """After every `snapshot_every`-th generator step, the slot of the
        oldest snapshot takes a copy of D (of each D of an ensemble in
        turn). Written with `where` rather than under a `tf.cond`: an
        assignment inside a branch is refused by MirroredStrategy."""
        steps = self.snapshot_clock.value + 1
        self.snapshot_clock.assign(steps)
        due = ops.equal(steps % self.snapshot_every, 0)
        taken = self.snapshots_taken.value
        slot, source = taken % self.snapshot_count, taken % self.discriminator_count
        members = [judge.weights for judge in self.discriminators]
        chosen = list(members[0])  # the weights of D `source`, picked once for every slot
        for member, weights in enumerate(members[1:], start=1):
            chosen = [ops.where(ops.equal(source, member), w, c) for w, c in zip(weights, chosen)]
        for index, snapshot in enumerate(self.snapshots):
            write = ops.logical_and(due, ops.equal(slot, index))
            for kept, weight in zip(snapshot.weights, chosen):
                kept.assign(ops.where(write, ops.cast(weight, kept.dtype), kept))
        self.snapshots_taken.assign(taken + ops.cast(due, "int32"))

    def average_decay(self):
        """`ema_decay`, warmed up as tf.train.ExponentialMovingAverage's num_updates
        does: min(decay, (1 + t) / (10 + t)) after t generator steps. Without it
        the average of a short run keeps its random start for long (measured
        on pggan: noise at 8x8 while the generator drew digit shapes)."""
        steps = ops.cast(self.g_optimizer.iterations, "float32")
        return ops.minimum(self.ema_decay, (1.0 + steps) / (10.0 + steps))

    def update_average(self):
        """average <- decay * average + (1 - decay) * G, for every weight of G
        (batch-norm statistics too, so the average normalises as it was averaged)."""
        decay = self.average_decay()
        for average, weight in zip(self.ema_generator.weights, self.generator.weights):
            average.assign(decay * average + (1.0 - decay) * ops.cast(weight, average.dtype))

    def test_step(self, data):
        real, labels = self.unpack_batch(data)
        fake = self.fake_samples(tf.shape(real)[0], labels, training=False)
        real_logits = self.discriminate(real, labels, training=False)
        fake_logits = self.discriminate(fake, labels, training=False)
        d_loss = self.discriminator_loss(real, fake, real_logits, fake_logits,
                                         **_labelled(self.discriminator_loss, labels))
        return self.track(d_loss, self.generator_loss(fake_logits), real_logits, fake_logits)

    # ---------------------------------------------- hooks for ganzoo.train
    def training_callbacks(self, dataset, epochs, eval_every=None, options=None):
        """FID, KID and SWD (digits), or mode coverage (ring, grid), every
        `eval_every` epochs; by default the `train:` section's on those
        datasets, whose feature extractors need no download."""
        if dataset is None:  # an in-memory dataset: nothing to compare with
            return []
        offline = dataset == "digits" or dataset in data_lib.MIXTURES
        every = eval_every if eval_every is not None else ((options or {}).get("eval_every", 0) if offline else 0)
        if not every:
            return []
        return [callbacks_lib.EvaluationCallback(dataset, metrics=self.evaluation_metrics(dataset), every=every,
                                                 n=callbacks_lib.evaluation_samples(dataset))]

    def evaluation_metrics(self, dataset):
        """The metrics of in-training evaluation on `dataset`."""
        return ("mode_coverage",) if dataset in data_lib.MIXTURES else ("fid", "kid", "swd")

    def preview_inputs(self, n=64, seed=0, per_class=8, dataset=None):
        return latent_noise(n, self.latent_dim, seed)

    def preview(self, inputs):
        return visualize.picture(self.generate_from(inputs)), ""

    def sampler(self):
        # One compiled graph for every batch, instead of eager layer calls.
        compiled = tf.function(lambda inputs: self(inputs, training=False), reduce_retracing=True)

        def generate(z, labels=None):
            return compiled(self.generator_inputs(z, labels)).numpy()

        return Sampler(generate, self.latent_dim, tuple(self.data_shape), self.name, self.num_classes)

    # -------------------------------------------------------- generation
    def call(self, z, training=None):
        """Generate samples from latent vectors `z` of shape `[batch, latent_dim]`
        (with the moving-average generator if there is one)."""
        return self.sampling_generator(z, training=training)

    def sample_latent(self, n, seed=None):
        """`n` latent vectors from N(0, I); the same seed gives the same vectors."""
        return latent_noise(n, self.latent_dim, seed)

    def generate(self, n, seed=None, labels=None, batch_size=256):
        """`n` samples as a NumPy array `[n, *data_shape]` (images in [-1, 1]).

        The same `seed` gives the same samples; `seed=None` draws fresh noise.
        `labels` (conditional entries only): one class for all, or one per sample.
        """
        if int(n) < 1:
            raise ValueError(f"n must be at least 1, got {n!r}.")
        return self.generate_from(self.sample_latent(n, seed), labels=labels, batch_size=batch_size)

    def generate_from(self, z, labels=None, batch_size=256):
        """Samples for given latent vectors (and labels), in inference mode, as NumPy."""
        return in_batches(lambda rows: self(rows, training=False), self.generator_inputs(z, labels), batch_size)

    def generator_inputs(self, z, labels=None):
        """What `call` takes, from NumPy-like `z` (and labels), checked."""
        z = np.asarray(z, dtype="float32")
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must have shape [n, {self.latent_dim}], got {list(z.shape)}.")
        if labels is not None:
            raise ValueError(
                f"{self.name} is not a conditional model: it takes no labels. "
                "Class-conditional generation is the 'cgan' entry."
            )
        return z

    # ------------------------------------------------------------ export
    def serving_endpoints(self):
        def serve(z):
            return {"images": self.sampling_generator(z, training=False)}

        return {"serving_default": (serve, [self.latent_spec()])}

    def latent_spec(self):
        return tf.TensorSpec([None, self.latent_dim], tf.float32, name="z")

    def exported_networks(self):
        return [self.sampling_generator]

    def restore_exported(self, weights):
        """An export holds the moving average, if any: G starts from it too."""
        super().restore_exported(weights)
        if self.ema_decay:
            (self.cluster_sampler if self.clusters else self.generator).set_weights(weights[0])
        if self.clusters:
            self._sampler_from_export = True  # no centroids in an export: `fit` refuses to guess them

    def get_config(self):
        return {**super().get_config(), "latent_dim": self.latent_dim, "d_steps": self.d_steps,
                "ema_decay": self.ema_decay or None, "augment": self.augment,
                "augment_probability": self.augment_probability, "ada_target": self.ada_target,
                "ada_images": self.ada_images, "r1_weight": self.r1_weight, "r1_every": self.r1_every,
                "discriminators": self.discriminator_count, "ensemble": self.ensemble,
                "ensemble_lambda": self.ensemble_lambda, "pack": self.pack, "snapshots": self.snapshot_count,
                "snapshot_every": self.snapshot_every, "snapshot_weight": self.snapshot_weight,
                "pool_size": self.pool_size, "d_until_accuracy": self.d_until_accuracy,
                "info_categories": self.info_categories, "info_weight": self.info_weight, "clusters": self.clusters,
                "cluster_embedding": self.cluster_embedding}


ENSEMBLES = ("mean", "softmax")


def _labelled(loss, labels):
    """The `labels=` keyword for `loss` (a bound `discriminator_loss`): given
    when there are labels and the method takes them, so that an override
    written with four arguments keeps working on labelled entries too."""
    if labels is None:
        return {}
    return {"labels": labels} if _takes_labels(getattr(loss, "__func__", loss)) else {}


@functools.lru_cache(maxsize=None)
def _takes_labels(function):
    parameters = inspect.signature(function).parameters.values()
    return any(p.name == "labels" or p.kind is p.VAR_KEYWORD for p in parameters)


def combine_ensemble(losses, how="mean", lam=1.0):
    """G's loss against an ensemble from its loss against each D: their
    mean, or GMAN's soft max, sum_i softmax(lam * L)_i * L_i (Durugkar et
    al. 2016): lam = 0 is the mean, a large lam the hardest D's loss.

    The soft max's weights come from the losses over the global batch (a
    mean over replicas) and are held constant in the gradient, so that one
    and N replicas make the same update: weights from each replica's own
    half batch would differ from the global batch's.
    """
    if len(losses) == 1:
        return losses[0]
    stacked = ops.stack([ops.cast(l, "float32") for l in losses])
    if how == "mean":
        return ops.mean(stacked)
    overall = stacked
    context = tf.distribute.get_replica_context()
    if context is not None and context.num_replicas_in_sync > 1:
        overall = context.all_reduce("mean", stacked)
    weights = ops.stop_gradient(ops.softmax(lam * overall))
    return ops.sum(weights * stacked)


class Judges(keras.Model):
    """Several discriminators behind one name: a call goes to the member
    `active` names, which is per thread (replicas trace in parallel
    threads); `trainable_variables` are all of theirs."""

    def __init__(self, members, **kwargs):
        super().__init__(**kwargs)
        self.members = list(members)
        self._local = threading.local()
        self.built = all(member.built for member in self.members)

    @property
    def active(self):
        return getattr(self._local, "index", 0)

    @active.setter
    def active(self, index):
        self._local.index = index

    def call(self, samples, **kwargs):
        return self.members[self.active](samples, **kwargs)


class Packed(keras.Model):
    """A discriminator that judges `m` samples at once (PacGAN): a batch
    [B, ..., C] becomes [B / m, ..., m * C], sample j of a group in
    channels j*C .. (j+1)*C - 1; one logit per group."""

    def __init__(self, judge, m, **kwargs):
        super().__init__(**kwargs)
        self.judge, self.m = judge, int(m)
        self.built = judge.built  # nothing of its own to build; else fit would build the GAN on data

    def call(self, samples, **kwargs):
        return self.judge(pack_samples(samples, self.m), **kwargs)


def _check_divisible(batch, k, option):
    """`batch`, refused unless its size is a multiple of k: at trace time when
    the size is known (a clear error from plain `fit` too), else in the graph."""
    message = f"{option} needs each replica's batch to be a multiple of {k}"
    if batch.shape[0] is not None:
        if batch.shape[0] % k:
            raise ValueError(f"{message}; this one has {batch.shape[0]} rows. Choose another batch size.")
        return batch
    with tf.control_dependencies([tf.debugging.assert_equal(tf.shape(batch)[0] % k, 0, message=message)]):
        return tf.identity(batch)  # what follows waits for the check


def _read_now(variable):
    """The variable's value read here, before any later update: converting a
    MirroredVariable in replica context reads it only where it is used."""
    value = variable.value
    return tf.identity(value.read_value() if hasattr(value, "read_value") else value)


def _strided(batch, k):
    """[B, ...] -> [B / k, k, ...]: column i holds rows i, i + k, i + 2k, ...,
    which is the same set on one replica as on N (each holding a
    contiguous share whose size is a multiple of k)."""
    return ops.reshape(batch, (-1, k, *batch.shape[1:]))


def pack_samples(samples, m):
    """[B, ..., C] -> [B / m, ..., m * C], consecutive samples grouped."""
    shape = samples.shape
    samples = _check_divisible(samples, m, f"pack={m}")
    grouped = ops.reshape(samples, (-1, m, *shape[1:]))
    moved = ops.moveaxis(grouped, 1, -2)  # [B / m, ..., m, C]
    return ops.reshape(moved, (-1, *shape[1:-1], m * shape[-1]))


@contextlib.contextmanager
def _python_random_from(seed):
    """Within, Python's `random`, from which Keras draws the seed of every
    unseeded initializer, starts from `seed` (if not None); after, it is as
    it was. Without it, a model's initial weights depended on what had drawn
    from `random` before it was built."""
    if seed is None:
        yield
        return
    state = random.getstate()
    random.seed(seed)
    try:
        yield
    finally:
        random.setstate(state)


def _initialise_anew(network, seed):
    """Draw `network`'s kernels again from their initializers with seeds
    drawn from `seed`: an ensemble member or InfoGAN's Q then starts apart
    from D even when a network builder passes seeded initializers (whose
    draws repeat from build to build), and the same `seed` gives the same
    values in any process."""
    rng = np.random.default_rng(seed)
    for layer in _all_layers(network):
        for name in ("kernel", "embeddings", "depthwise_kernel", "pointwise_kernel"):
            variable, initializer = getattr(layer, name, None), getattr(layer, f"{name}_initializer", None)
            if variable is None or initializer is None or not hasattr(initializer, "get_config"):
                continue
            config = initializer.get_config()
            if "seed" not in config:  # a constant initializer: nothing random to redraw
                continue
            fresh = type(initializer).from_config({**config, "seed": int(rng.integers(2**31))})
            variable.assign(fresh(variable.shape, variable.dtype))


def _all_layers(layer):
    """`layer` and every layer inside it, nested models included."""
    yield layer
    for inner in getattr(layer, "layers", ()):
        yield from _all_layers(inner)


def _count(name, value, most, least=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not least <= value <= most:
        kind = "a positive integer" if least == 1 else f"an integer from {least}"
        raise ValueError(f"{name} must be {kind} (at most {most}), got {value!r}.")
    return int(value)


def _fraction(name, value, upper_open=False):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1
    if not ok or (upper_open and value == 1):
        raise ValueError(f"{name} must lie in [0, 1{')' if upper_open else ']'}, got {value!r}.")
    return float(value)


def _non_negative(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
        raise ValueError(f"{name} must be a non-negative number, got {value!r}.")
    return float(value)


def _as_shape(data_shape):
    try:
        shape = tuple(int(d) for d in data_shape)
    except (TypeError, ValueError):
        raise ValueError(
            f"data_shape must be a sequence of positive integers such as "
            f"(32, 32, 1) or (2,), got {data_shape!r}."
        ) from None
    if not shape or any(d < 1 for d in shape) or len(shape) not in (1, 3):
        raise ValueError(
            f"data_shape must be (H, W, C) for images or (D,) for vectors, got {data_shape!r}."
        )
    return shape
