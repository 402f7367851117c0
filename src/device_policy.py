"""How the work runs on this machine: the dtype policy a precision param picks for its GPU
or CPU, TensorFlow's CPU thread pools, and the device's name for benchmark rows."""

import os
from pathlib import Path

import keras


def dtype_policy(name, gpu_compute_capability, cpu_bfloat16=False):
    """The Keras dtype policy that a precision param (train.precision, ensemble.precision)
    names; auto picks by device.

    auto: on a GPU, mixed_bfloat16 from compute capability 8 (bfloat16 tensor cores) and
    mixed_float16 on 7.x; on a CPU, mixed_bfloat16 where it has bfloat16 arithmetic
    (cpu_bfloat16); else float32, as 16-bit math that the hardware lacks runs slower.
    gpu_compute_capability: (major, minor), or None without a GPU.
    """
    if name != "auto":
        return name
    if gpu_compute_capability:
        major = gpu_compute_capability[0]
        return "mixed_bfloat16" if major >= 8 else "mixed_float16" if major >= 7 else "float32"
    return "mixed_bfloat16" if cpu_bfloat16 else "float32"


def precision_policy(name):
    """dtype_policy for `name` on this machine: its first GPU, as the Keras backend sees it, else its CPU."""
    if name != "auto":
        return name
    gpu = first_gpu()
    capability = gpu and gpu[1]
    # Only TensorFlow, through oneDNN, turns a CPU's bfloat16 arithmetic into speed; JAX's XLA trains no
    # faster in bfloat16 on it than in float32 (docs/benchmarks.md, Keras on JAX against TensorFlow).
    on_tensorflow = keras.backend.backend() == "tensorflow"
    return dtype_policy(name, capability, capability is None and on_tensorflow and cpu_has_bfloat16())


def first_gpu():
    """(name, compute capability (major, minor)) of the first GPU the Keras backend sees, or None."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            details = tf.config.experimental.get_device_details(gpus[0])
            return details.get("device_name", "GPU"), details.get("compute_capability")
    elif keras.backend.backend() == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform == "gpu":
            return device.device_kind, tuple(map(int, device.compute_capability.split(".")))
    return None


def device_name():
    """The GPU, or the CPU and its cores, that Keras runs on, and its backend: a benchmark row's machine."""
    gpu = first_gpu()
    if gpu:
        name = gpu[0]
    else:
        name = f"{cpuinfo_field('model name') or 'CPU'}, {len(os.sched_getaffinity(0))} cores"
    return f"{name}, Keras on {keras.backend.backend()}"


# x86 instruction sets with bfloat16 dot products, which oneDNN runs TensorFlow's bfloat16
# convolutions and matmuls on: AVX512_BF16 (AMD Zen 4 on, Intel Cooper Lake on) and AMX.
BFLOAT16_CPU_FLAGS = {"avx512_bf16", "amx_bf16"}


def cpu_has_bfloat16(cpuinfo="/proc/cpuinfo"):
    """Whether the CPU has bfloat16 arithmetic, by the flags Linux lists; False where it lists none."""
    return not BFLOAT16_CPU_FLAGS.isdisjoint((cpuinfo_field("flags", cpuinfo) or "").split())


def cpuinfo_field(name, cpuinfo="/proc/cpuinfo"):
    """The first CPU's value of a field Linux lists, such as "model name"; None where it lists none (off Linux)."""
    try:
        lines = Path(cpuinfo).read_text().splitlines()
    except OSError:
        return None
    return next((line.split(":", 1)[1].strip() for line in lines if line.split(":", 1)[0].strip() == name), None)


def in_precision(model, policy):
    """A built model, computing in the dtype policy from its next call on; its weights stay
    as they are, and its softmax layer in float32 (see architectures.build_model)."""
    for layer in model.layers[:-1]:
        layer.dtype_policy = policy
    return model


def build_in_precision(build, policy):
    """build()'s model, built under the dtype policy, leaving the global policy as it was."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)
    try:
        return build()
    finally:
        keras.config.set_dtype_policy(previous)


def configure_threads(threads):
    """TensorFlow's CPU thread pools (config.Threads), before it starts them; 0 leaves a pool at one thread per
    core. Other backends choose their own."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads.intra_op)
        tf.config.threading.set_inter_op_parallelism_threads(threads.inter_op)
