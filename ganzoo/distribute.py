"""Choosing a `tf.distribute` strategy by name."""

import tensorflow as tf

STRATEGIES = ("auto", "default", "mirrored", "multiworker", "tpu")


def get_strategy(name="auto"):
    """A `tf.distribute.Strategy`.

    - `auto`: `MirroredStrategy` when several GPUs are visible, else the default.
    - `default`: one device.
    - `mirrored`: all local GPUs (or all logical CPUs when there is no GPU).
    - `multiworker`: `MultiWorkerMirroredStrategy`, configured by `TF_CONFIG`.
    - `tpu`: `TPUStrategy` on the TPU that `TPUClusterResolver` finds.

    Create the model, optimizers and metrics inside `strategy.scope()`; the
    batch size of the dataset is the global batch.
    """
    if name == "auto":
        return tf.distribute.MirroredStrategy() if len(tf.config.list_logical_devices("GPU")) > 1 else tf.distribute.get_strategy()
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        if gpus:
            return tf.distribute.MirroredStrategy([d.name for d in gpus])
        # On CPUs the default CollectiveAllReduce can run the all-reduces of
        # successive updates (d_steps > 1, then the generator) in a different
        # order on each device and abort with "Shape mismatch in the collective
        # instance"; reducing through one device has no such race.
        return tf.distribute.MirroredStrategy(
            [d.name for d in tf.config.list_logical_devices("CPU")],
            cross_device_ops=tf.distribute.ReductionToOneDevice(),
        )
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"Unknown strategy {name!r}. Choose one of: {', '.join(STRATEGIES)}.")


def mixed_precision_policy():
    """The mixed policy for this machine: `mixed_float16` on GPUs (tensor
    cores; needs loss scaling, which `GAN.compile` adds to both optimizers),
    `mixed_bfloat16` on CPUs and TPUs (float32's range, no scaling)."""
    return "mixed_float16" if tf.config.list_logical_devices("GPU") else "mixed_bfloat16"


def is_chief(strategy):
    """Whether this process writes the run's files: always, except on the
    non-chief workers of `MultiWorkerMirroredStrategy` (TF's own test: the
    `chief` task, or worker 0 when the cluster has none)."""
    return strategy.extended.should_checkpoint
