"""TensorFlow's strategies for spreading a member's training over devices and machines."""

import tensorflow as tf


def strategy(name):
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
