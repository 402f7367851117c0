"""The learning rate: scaled to the global batch, and scheduled by epoch or step."""

import keras


def learning_rate(train, batch_size, steps_per_epoch):
    """The optimizer's learning rate for a global batch of batch_size, as `train` (config.Train)
    says: a number that
    ReduceLROnPlateau lowers, or a schedule by step.

    The rate is learning_rate scaled from lr_scaling.base_batch_size to batch_size by
    lr_scaling.rule. exponential: that rate × decay_rate^epoch. one_cycle: a linear warm-up
    from a tenth of that rate to it over warmup_fraction of the steps, then a cosine down
    to zero.
    """
    peak = train.learning_rate * batch_scale(train.lr_scaling, batch_size)
    if train.schedule == "plateau":
        return peak
    if train.schedule == "exponential":
        return keras.optimizers.schedules.ExponentialDecay(peak, steps_per_epoch, train.decay_rate, staircase=True)
    steps = steps_per_epoch * train.epochs  # one_cycle
    warmup_steps = round(steps * train.warmup_fraction)
    return keras.optimizers.schedules.CosineDecay(
        peak / 10, steps - warmup_steps, warmup_target=peak, warmup_steps=warmup_steps
    )


def batch_scale(lr_scaling, batch_size):
    """The factor on the learning rate for a global batch of batch_size.

    linear keeps the update per image the same, as for SGD (Goyal et al., 2017); sqrt keeps
    the gradient noise the same, which suits Adam at large batches (Malladi et al., 2022).
    """
    ratio = batch_size / lr_scaling.base_batch_size
    return {"linear": ratio, "sqrt": ratio**0.5, "none": 1.0}[lr_scaling.rule]
