import os
from pathlib import Path

import numpy as np
import pytest

from src.architectures import build_model
from src.device_policy import cpu_has_bfloat16, device_name, dtype_policy, in_precision


@pytest.mark.parametrize(
    "name, capability, cpu_bfloat16, policy",
    [
        ("auto", None, False, "float32"),
        ("auto", None, True, "mixed_bfloat16"),
        ("auto", (6, 1), True, "float32"),
        ("auto", (7, 5), False, "mixed_float16"),
        ("auto", (9, 0), False, "mixed_bfloat16"),
        ("float32", (9, 0), True, "float32"),
        ("mixed_float16", None, False, "mixed_float16"),
    ],
)
def test_precision_auto_follows_the_device_and_a_named_policy_wins(name, capability, cpu_bfloat16, policy):
    assert dtype_policy(name, capability, cpu_bfloat16) == policy


ZEN4_FLAGS = "fpu vme avx avx2 fma avx512f avx512bw avx512_bf16 avx512_vnni"


@pytest.mark.parametrize(
    "cpuinfo, expected",
    [
        (f"processor\t: 0\nflags\t\t: {ZEN4_FLAGS}\n", True),
        ("processor\t: 0\nflags\t\t: fpu avx avx2 fma amx_bf16 amx_tile\n", True),  # Intel Sapphire Rapids
        ("processor\t: 0\nflags\t\t: fpu avx avx2 fma avx512f avx512bw\n", False),  # Skylake-SP: no bfloat16
        ("processor\t: 0\nFeatures\t: fp asimd\n", False),  # no x86 flags line
    ],
)
def test_cpu_bfloat16_is_read_from_the_cpu_flags(tmp_path, cpuinfo, expected):
    (tmp_path / "cpuinfo").write_text(cpuinfo)
    assert cpu_has_bfloat16(tmp_path / "cpuinfo") is expected


def test_no_cpuinfo_means_no_bfloat16(tmp_path):
    assert cpu_has_bfloat16(tmp_path / "absent") is False


def test_in_precision_computes_in_the_policy_and_keeps_the_weights_and_a_float32_softmax():
    model = build_model("fast_cnn")
    images = np.random.default_rng(0).integers(0, 256, (64, 28, 28, 1), dtype=np.uint8)
    weights = [w.copy() for w in model.get_weights()]
    in_float32 = np.asarray(model(images))
    assert in_precision(model, "mixed_bfloat16") is model
    in_bfloat16 = np.asarray(model(images))
    assert [layer.compute_dtype for layer in model.layers] == ["bfloat16"] * (len(model.layers) - 1) + ["float32"]
    assert in_bfloat16.dtype == np.float32
    assert all(np.array_equal(before, after) for before, after in zip(weights, model.get_weights(), strict=True))
    assert not np.array_equal(in_bfloat16, in_float32)  # bfloat16 keeps 8 bits of mantissa ...
    np.testing.assert_allclose(in_bfloat16, in_float32, atol=0.02)  # ... close enough to rank the digits alike


def test_a_benchmark_row_names_the_cpu_its_cores_and_the_backend():
    name = device_name()  # CI's machine has no GPU
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next(line for line in cpuinfo if line.startswith("model name")).split(":", 1)[1].strip()
    assert name == f"{model}, {len(os.sched_getaffinity(0))} cores, Keras on tensorflow"
