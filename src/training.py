"""Fitting one ensemble member: the input pipeline, seeding, the distribution strategy, and a
backup after each epoch from which a killed run resumes to the same model as an uninterrupted one."""

import dataclasses
import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from dvclive import Live
from dvclive.keras import DVCLiveCallback

from . import architectures, augmentation, device_policy, learning_rate
from .atomic import atomic_dir, atomic_path, finish_replacing, remove
from .prepared_data import load_split


def train(train_npz, val_npz, model_path, live_dir, params, seed, backup_root, strategy=None, callbacks=()):
    """Train as `params` (config.Train) says from `seed`, save the model and log each epoch.

    With params.final_fit the model trains on the train and validation splits together,
    for the epochs that a validated run with the same params took, and watches nothing.
    An unfinished run's backup under backup_root is resumed when params, seed, data and code
    are unchanged, and discarded otherwise. `strategy` defaults to the one train.strategy
    picks; with several workers only the chief writes the model, the metrics and the
    backup, and every worker resumes from the chief's backup. `callbacks` go to model.fit too.
    """
    keras.utils.set_random_seed(seed)
    if params.deterministic:
        tf.config.experimental.enable_op_determinism()
    strategy = strategy or distribution_strategy(params.strategy)
    chief = strategy.extended.should_checkpoint  # the chief, or the only task
    batch_size = params.batch_size * strategy.num_replicas_in_sync  # batch_size is per replica
    images, labels, validation = training_data(load_split(train_npz), load_split(val_npz), params.final_fit)
    policy = device_policy.precision_policy(params.precision)
    with strategy.scope():
        model = compiled_model(params, batch_size, -(-len(labels) // batch_size), policy)
    epoch = tf.Variable(0, dtype=tf.int64, trainable=False)
    reduce_lr = (
        keras.callbacks.ReduceLROnPlateau(**dataclasses.asdict(params.reduce_lr))
        if params.schedule == "plateau"
        else None
    )
    # auto's choice of policy differs between machines
    fingerprint_params = {**dataclasses.asdict(params), "seed": seed, "policy": policy}
    backup = TrainingBackup(
        backup_dir(backup_root, fingerprint_params, train_npz, val_npz, remove_others=chief),
        reduce_lr,
        live_dir,
        writes=chief,
    )
    resumed_epoch = backup.saved_epoch()
    if resumed_epoch:
        print(f"train: resuming after epoch {resumed_epoch} from the backup in {backup.backup_dir}", flush=True)
    callbacks = [EpochSeeds(epoch), reduce_lr or LearningRateLog(), *callbacks]
    if chief:
        if resumed_epoch:
            backup.restore_log()
        # dvc.yaml declares the plots itself, and `dvc exp run` already records the experiment.
        live = Live(live_dir, dvcyaml=None, save_dvc_exp=False, resume=resumed_epoch > 0)
        live.step = resumed_epoch
        callbacks.append(LiveMetrics(live=live))
    model.fit(
        training_batches(images, labels, batch_size, seed, epoch),
        epochs=params.epochs,
        shuffle=False,  # training_batches shuffles
        validation_data=validation,
        # The backup copies what the logger wrote for the epoch, so it must come after it.
        callbacks=[*callbacks, backup],
        verbose=2,
    )
    if chief:
        with atomic_path(model_path) as tmp:
            model.save(tmp)
            make_reproducible(tmp)
    return model


def make_reproducible(keras_file):
    """Rewrite a saved .keras archive so that its bytes depend on the model alone: Keras stamps the time of
    saving into metadata.json and into the weights' entry, and names objects that layers share (the dtype
    policy) by their address in memory. The same weights then give the same file, and DVC reruns nothing
    downstream of a retrain that changed nothing."""
    with zipfile.ZipFile(keras_file) as archive:
        entries = [(info, archive.read(info)) for info in archive.infolist()]
    with zipfile.ZipFile(keras_file, "w") as archive:
        for info, data in entries:
            if info.filename == "metadata.json":
                metadata = json.loads(data)
                metadata.pop("date_saved", None)
                data = json.dumps(metadata).encode()
            if info.filename == "config.json":
                data = json.dumps(numbered_shared_objects(json.loads(data), {})).encode()
            archive.writestr(
                zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0)), data, compress_type=info.compress_type
            )


def compiled_model(params, batch_size, steps_per_epoch, policy):
    """The model that `params` (config.Train) describe, built under the dtype policy and compiled
    with its optimizer and learning rate for a global batch of batch_size."""
    model = device_policy.build_in_precision(lambda: architectures.build_model(params.arch, params.augment), policy)
    model.compile(
        optimizer=keras.optimizers.get(
            {
                "class_name": params.optimizer,
                "config": {"learning_rate": learning_rate.learning_rate(params, batch_size, steps_per_epoch)},
            }
        ),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=params.jit_compile,  # auto: Keras's choice, which leaves XLA off on a CPU
    )
    return model


def training_data(train_split, val_split, final_fit):
    """(images, labels, validation data) to fit on: the train split, watching the validation
    split; or, for a final fit, both splits together, watching nothing."""
    if not final_fit:
        return train_split["x"], train_split["y"], (val_split["x"], val_split["y"])
    return np.concatenate([train_split["x"], val_split["x"]]), np.concatenate([train_split["y"], val_split["y"]]), None


class LiveMetrics(DVCLiveCallback):
    """DVCLive's Keras logger, naming the validation split's metrics val/, as the evaluate stage's are, where
    DVCLive's own convention says eval/."""

    def on_epoch_end(self, epoch, logs=None):
        for name, value in (logs or {}).items():
            self.live.log_metric(name.replace("val_", "val/", 1) if name.startswith("val_") else f"train/{name}", value)
        self.live.next_step()


class LearningRateLog(keras.callbacks.Callback):
    """Logs the scheduled learning rate each epoch, as ReduceLROnPlateau does its own."""

    def on_epoch_end(self, epoch, logs=None):
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


def distribution_strategy(name):
    """auto: MirroredStrategy over the local GPUs when there are two or more, else the default strategy.
    multiworker: MultiWorkerMirroredStrategy over the cluster that TF_CONFIG describes."""
    if name == "multiworker":
        return MultiWorkerMirroredStrategy()
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


class MultiWorkerMirroredStrategy(tf.distribute.MultiWorkerMirroredStrategy):
    """TensorFlow's strategy, taught to reduce what Keras 3's fit hands it (keras-team/keras#20585).

    To build the model, fit reduces a whole batch of uint8 images and labels at once, and
    after each step it reduces scalar metrics along axis 0; the multi-worker strategy takes
    neither a nest, nor uint8, nor an axis that a scalar lacks.
    """

    def reduce(self, reduce_op, value, axis):
        parent = super()

        def reduce_part(part):
            local = self.experimental_local_results(part)[0]
            part_axis = None if local.shape.rank == 0 else axis
            if local.dtype != tf.uint8:
                return parent.reduce(reduce_op, part, part_axis)
            wide = self.run(lambda local: tf.cast(local, tf.int32), args=(part,))
            return tf.cast(parent.reduce(reduce_op, wide, part_axis), local.dtype)

        return tf.nest.map_structure(reduce_part, value)


def training_batches(images, labels, batch_size, seed, epoch):
    """A tf.data pipeline of shuffled (images, labels) batches.

    The order is drawn from (seed, epoch) each time the dataset is iterated, where epoch is
    a variable that EpochSeeds sets; it does not depend on how many epochs this process ran.
    """
    count = len(labels)
    images, labels = tf.constant(images), tf.constant(labels)

    def epoch_order(_):
        seed_pair = tf.stack([tf.constant(seed, tf.int64), epoch.read_value()])
        return tf.data.Dataset.from_tensor_slices(tf.random.experimental.stateless_shuffle(tf.range(count), seed_pair))

    return (
        tf.data.Dataset.range(1)
        .flat_map(epoch_order)
        .batch(batch_size)
        .map(lambda indices: (tf.gather(images, indices), tf.gather(labels, indices)))
        .apply(tf.data.experimental.assert_cardinality(-(-count // batch_size)))
        .prefetch(tf.data.AUTOTUNE)
    )


class EpochSeeds(keras.callbacks.Callback):
    """Start each epoch's randomness (data order, dropout, augmentation) from the epoch number.

    Keras's random layers draw from seed generators whose state advances with every step
    and is not part of a backup; restarting them per epoch makes a resumed run repeat the
    uninterrupted one.
    """

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_train_begin(self, logs=None):
        self.first_states = {id(v): v.numpy() for v in self.seed_generator_states()}

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch.assign(epoch)
        for state in self.seed_generator_states():
            # The second word counts draws, one per step; epochs get disjoint ranges of it.
            state.assign(self.first_states[id(state)] + np.array([0, epoch << 32]))

    def seed_generator_states(self):
        return [v for v in self.model.variables if v.name == "seed_generator_state"]


class TrainingBackup(keras.callbacks.BackupAndRestore):
    """keras BackupAndRestore, made exact and kill-proof.

    The backup also holds ReduceLROnPlateau's counters, so that a resumed run lowers the
    rate when an uninterrupted one would, and the dvclive folder as it was at that epoch,
    so that the curves go on without a gap or a repeat. Each backup is written whole into
    a new folder that replaces the old one by rename: a kill leaves one backup or the other.
    """

    def __init__(self, backup_dir, reduce_lr, live_dir, writes):
        """reduce_lr: the run's ReduceLROnPlateau, or None when a schedule sets the rate."""
        super().__init__(str(backup_dir), delete_checkpoint=writes)
        self.writes = writes  # False on the workers that are not the chief: they only restore
        self.reduce_lr = reduce_lr
        self.state_path = Path(backup_dir) / "reduce_lr.json"
        self.live_dir = Path(live_dir)
        self.live_copy = Path(backup_dir) / "dvclive"

    def saved_epoch(self):
        """The number of epochs the backup holds; 0 when there is none."""
        metadata = Path(self._training_metadata_path)
        return json.loads(metadata.read_text())["epoch"] if metadata.exists() else 0

    def restore_log(self):
        shutil.rmtree(self.live_dir, ignore_errors=True)
        shutil.copytree(self.live_copy, self.live_dir)

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)  # restores weights, optimizer state and the epoch
        if self.reduce_lr and self.state_path.exists():
            vars(self.reduce_lr).update(json.loads(self.state_path.read_text()))

    def _save_model(self):
        if not self.writes:
            return
        with atomic_dir(self.backup_dir) as tmp:
            self.model.save_weights(tmp / Path(self._weights_path).name)
            metadata = {"epoch": self._current_epoch, "batch": self._last_batch_seen}
            (tmp / Path(self._training_metadata_path).name).write_text(json.dumps(metadata))
            if self.reduce_lr:
                state = {name: getattr(self.reduce_lr, name) for name in ("best", "wait", "cooldown_counter")}
                (tmp / self.state_path.name).write_text(json.dumps(state, default=float))  # best may be a NumPy float
            shutil.copytree(self.live_dir, tmp / self.live_copy.name)


def backup_dir(root, params, *inputs, remove_others=True):
    """root/<fingerprint of params, inputs and code>, after removing backups of other runs if remove_others.

    A backup made with other params, data or code must not be resumed: it would silently
    mix two runs.
    """
    fingerprint = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    code = (__file__, architectures.__file__, augmentation.__file__, device_policy.__file__, learning_rate.__file__)
    for path in (*inputs, *code):
        fingerprint.update(Path(path).read_bytes())
    name = fingerprint.hexdigest()[:16]
    root = Path(root)
    finish_replacing(root / name)  # a kill between a backup's two renames leaves it aside
    if remove_others and root.is_dir():
        for stale in root.iterdir():
            if stale.name != name:
                remove(stale)
    return root / name


def numbered_shared_objects(config, numbers):
    """config with each shared_object_id, a memory address, replaced by its number in order of appearance."""
    if isinstance(config, dict):
        return {
            key: numbers.setdefault(value, len(numbers) + 1)
            if key == "shared_object_id"
            else numbered_shared_objects(value, numbers)
            for key, value in config.items()
        }
    if isinstance(config, list):
        return [numbered_shared_objects(value, numbers) for value in config]
    return config
