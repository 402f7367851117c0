"""Fitting one ensemble member: the input pipeline, seeding, the distribution over devices, and a
backup after each epoch from which a killed run resumes to the same model as an uninterrupted one.

The same code runs under every Keras backend: TensorFlow, the default, and JAX.
"""

import dataclasses
import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import keras
import numpy as np
from dvclive import Live

from . import architectures, augmentation, device_policy, devices, learning_rate
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
    `strategy` is TensorFlow's; other backends spread a batch over their local devices with
    keras.distribution.
    """
    keras.utils.set_random_seed(seed)
    if params.deterministic:
        devices.make_deterministic()
    spread = devices.spread(params.strategy, strategy)
    batch_size = params.batch_size * spread.replicas  # batch_size is per replica
    images, labels, validation = training_data(load_split(train_npz), load_split(val_npz), params.final_fit)
    policy = device_policy.precision_policy(params.precision)
    with spread.scope():
        model = compiled_model(params, batch_size, -(-len(labels) // batch_size), policy)
    batches = ShuffledBatches(images, labels, batch_size, seed)
    chief = spread.chief  # the chief, or the only process
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
    callbacks = [EpochSeeds(batches), reduce_lr or LearningRateLog(), *callbacks]
    if params.ema_momentum and validation:
        callbacks.append(keras.callbacks.SwapEMAWeights())  # validate the averaged weights, the ones saved
    if chief:
        if resumed_epoch:
            backup.restore_log()
        # dvc.yaml declares the plots itself, and `dvc exp run` already records the experiment.
        live = Live(live_dir, dvcyaml=None, save_dvc_exp=False, resume=resumed_epoch > 0)
        live.step = resumed_epoch
        callbacks.append(LiveMetrics(live=live))
    model.fit(
        batches,
        epochs=params.epochs,
        shuffle=False,  # ShuffledBatches shuffles
        # Not as arrays: TensorFlow's tf.data slices arrays of a few MB with a parallel map that its op
        # determinism rewrites, logging an error-level line about an attribute it then ignores.
        validation_data=Batches(validation["x"], validation["y"], batch_size) if validation else None,
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
                "config": {
                    "learning_rate": learning_rate.learning_rate(params, batch_size, steps_per_epoch),
                    # Polyak averaging: fit ends by replacing the weights with their average. Off, the optimizer's
                    # saved config is left as it was before this setting existed.
                    **({"use_ema": True, "ema_momentum": params.ema_momentum} if params.ema_momentum else {}),
                },
            }
        ),
        loss=SmoothedSparseCrossentropy(params.label_smoothing)
        if params.label_smoothing
        else "sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=params.jit_compile,  # auto: Keras's choice, which leaves XLA off on a CPU
    )
    return model


@keras.saving.register_keras_serializable(package="digits")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Cross-entropy of integer labels smoothed toward the uniform distribution: of each label's weight,
    label_smoothing is spread over all classes. Keras smooths one-hot labels only."""

    def __init__(self, label_smoothing, name="smoothed_sparse_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        # y_true: (batch,) or (batch, 1) integer labels; y_pred: (batch, classes) probabilities
        labels = keras.ops.cast(keras.ops.reshape(y_true, (-1,)), "int32")
        one_hot = keras.ops.one_hot(labels, keras.ops.shape(y_pred)[-1], dtype=y_pred.dtype)
        return keras.losses.categorical_crossentropy(one_hot, y_pred, label_smoothing=self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def training_data(train_split, val_split, final_fit):
    """(images, labels, validation split) to fit on: the train split, watching the validation
    split; or, for a final fit, both splits together, watching nothing."""
    if not final_fit:
        return train_split["x"], train_split["y"], val_split
    return np.concatenate([train_split["x"], val_split["x"]]), np.concatenate([train_split["y"], val_split["y"]]), None


class LiveMetrics(keras.callbacks.Callback):
    """Each epoch's metrics to DVCLive, as DVCLive's own Keras callback logs them, but naming the validation
    split's val/, as the evaluate stage's are, where DVCLive says eval/. DVCLive's callback is a tf.keras one,
    which imports TensorFlow under every backend."""

    def __init__(self, live):
        super().__init__()
        self.live = live

    def on_train_end(self, logs=None):
        self.live.end()

    def on_epoch_end(self, epoch, logs=None):
        for name, value in (logs or {}).items():
            self.live.log_metric(name.replace("val_", "val/", 1) if name.startswith("val_") else f"train/{name}", value)
        self.live.next_step()


class LearningRateLog(keras.callbacks.Callback):
    """Logs the scheduled learning rate each epoch, as ReduceLROnPlateau does its own."""

    def on_epoch_end(self, epoch, logs=None):
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


class Batches(keras.utils.PyDataset):
    """(images, labels) in batches, in the order of self.order.

    Under JAX the arrays are copied to the default device (a GPU's memory, where there is one) once, and
    each batch is gathered there: a step copies its row numbers, not its images. TensorFlow's adapter
    feeds a PyDataset through tf.data, which takes every batch back to the host, so there they stay NumPy.
    """

    def __init__(self, images, labels, batch_size):
        super().__init__()
        self.on_device = keras.backend.backend() == "jax"
        if self.on_device:
            images, labels = keras.ops.convert_to_tensor(images), keras.ops.convert_to_tensor(labels)
        self.images, self.labels, self.batch_size = images, labels, batch_size
        self.order = np.arange(len(labels))

    def __len__(self):
        return -(-len(self.labels) // self.batch_size)

    def __getitem__(self, index):
        rows = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        if self.on_device:
            return keras.ops.take(self.images, rows, axis=0), keras.ops.take(self.labels, rows, axis=0)
        return self.images[rows], self.labels[rows]


class ShuffledBatches(Batches):
    """Batches in an order drawn from (seed, epoch) alone, where EpochSeeds sets the epoch: a resumed run
    sees the order an uninterrupted one saw, whatever epoch it starts from."""

    def __init__(self, images, labels, batch_size, seed):
        super().__init__(images, labels, batch_size)
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch):
        self.order = np.random.default_rng([self.seed, epoch]).permutation(len(self.labels))


class EpochSeeds(keras.callbacks.Callback):
    """Start each epoch's randomness (data order, dropout, augmentation) from the epoch number.

    Keras's random layers draw from seed generators whose state advances with every step
    and is not part of a backup; restarting them per epoch makes a resumed run repeat the
    uninterrupted one.
    """

    def __init__(self, batches):
        super().__init__()
        self.batches = batches

    def on_train_begin(self, logs=None):
        self.first_states = {id(v): keras.ops.convert_to_numpy(v) for v in self.seed_generator_states()}

    def on_epoch_begin(self, epoch, logs=None):
        self.batches.set_epoch(epoch)
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
    code = (
        __file__,
        architectures.__file__,
        augmentation.__file__,
        device_policy.__file__,
        devices.__file__,
        learning_rate.__file__,
    )
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
