"""Measure `python -m src.classify` on competition digits rendered as a person would have them.

Takes validation-split digits (never trained on) from data/prepared/val.npz of a project that ran
`dvc repro` on the competition data, and writes each as an image file: scaled up to a random
60-400 px, pasted off-centre on a canvas up to twice that, half as dark ink on white, half in RGB,
half saved as JPEG at quality 60-90, the rest as PNG. Then runs classify on them in that project
and prints the accuracy.

    python bench/classify_rendered.py PROJECT --images 1000 [--model models/ensemble]
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def render(digit, path, rng):
    """digit (28, 28) uint8, bright on black, as an image file at path (its suffix picks the format)."""
    size = int(rng.integers(60, 401))
    canvas = size + int(rng.integers(0, size + 1))
    dark_ink = rng.random() < 0.5
    image = Image.new("L", (canvas, canvas), 255 if dark_ink else 0)
    ink = Image.fromarray(255 - digit if dark_ink else digit).resize((size, size), Image.Resampling.BICUBIC)
    image.paste(ink, (int(rng.integers(0, canvas - size + 1)), int(rng.integers(0, canvas - size + 1))))
    image = image.convert("RGB") if rng.random() < 0.5 else image
    image.save(path, **({"quality": int(rng.integers(60, 91))} if path.suffix == ".jpg" else {}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("project", type=Path, help="a project where `dvc repro` ran on the competition data")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", help="classify's --model: a SavedModel in place of the members")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    val = np.load(args.project / "data" / "prepared" / "val.npz")
    rows = rng.choice(len(val["y"]), args.images, replace=False)
    with tempfile.TemporaryDirectory() as folder:
        paths = [Path(folder) / f"{row}.{'jpg' if rng.random() < 0.5 else 'png'}" for row in rows]
        for row, path in zip(rows, paths, strict=True):
            render(val["x"][row, :, :, 0], path, rng)
        command = [sys.executable, "-m", "src.classify", *(["--model", args.model] if args.model else []), *paths]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        result = subprocess.run(command, cwd=args.project, env=env, capture_output=True, text=True, check=True)
    labels = {Path(path).stem: int(label) for path, label in re.findall(r"^(\S+): (\d) ", result.stdout, re.M)}
    correct = sum(labels[str(row)] == val["y"][row] for row in rows)
    print(f"classify: {correct} of {len(rows)} rendered validation digits right, {correct / len(rows):.2%}")


if __name__ == "__main__":
    main()
