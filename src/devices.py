"""The devices a member trains on, under whichever Keras backend runs: how many replicas one batch is
split over, which process writes, and deterministic ops. TensorFlow spreads with its tf.distribute
strategies; JAX with keras.distribution."""

import contextlib
import dataclasses
import os

import keras

from .stage_process import UserError


@dataclasses.dataclass(frozen=True)
class Spread:
    replicas: int  # devices one global batch is split over
    chief: bool  # whether this process writes the model, the metrics and the backup
    scope: object  # a callable giving the context to build the model in


def spread(strategy_name, tf_strategy=None):
    """How train.strategy `strategy_name` trains here; tf_strategy, a TensorFlow strategy, in its place.

    auto: every local GPU (data parallel), or the one device. multiworker: the machines that
    TF_CONFIG lists, under TensorFlow only."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        from . import tf_distribute

        tf_strategy = tf_strategy or tf_distribute.strategy(strategy_name)
        return Spread(tf_strategy.num_replicas_in_sync, tf_strategy.extended.should_checkpoint, tf_strategy.scope)
    if strategy_name == "multiworker":
        raise UserError(
            f"train.strategy is multiworker, which needs the TensorFlow backend (TF_CONFIG); under {backend}, "
            "auto trains on all of this machine's GPUs"
        )
    local = keras.distribution.list_devices()
    if len(local) > 1:
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=local))
    return Spread(len(local), True, contextlib.nullcontext)


def make_deterministic():
    """Ops that give the same bits every run, on a GPU too, at some of its speed."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    else:  # JAX: XLA reads the flag when it starts a GPU; its CPU ops are deterministic already
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_gpu_deterministic_ops" not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} --xla_gpu_deterministic_ops=true".strip()
