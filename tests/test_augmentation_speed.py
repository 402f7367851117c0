"""bench/augmentation_speed.py times both of augmentation's samplers."""

import subprocess
import sys

from workdir import ROOT


def test_it_prints_each_sampler_s_speed_on_this_device():
    run = subprocess.run(
        [sys.executable, ROOT / "bench" / "augmentation_speed.py", "--calls", "2"], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert "cores, Keras on tensorflow; batch 64; the samplers differ by at most" in lines[0]
    assert [line.split(":")[0] for line in lines[1:]] == [
        "tensorflow, ops.image.affine_transform",
        "tensorflow, gather sampler",
    ]
    assert all(line.endswith(" images/s") for line in lines[1:])
