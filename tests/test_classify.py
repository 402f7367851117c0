import re
import shutil
import sys

import numpy as np
from PIL import Image

from src.classify import main
from src.digit_images import read_digit
from src.ensemble import member_probabilities
from src.saved_ensemble import write_saved_ensemble
from workdir import make_workdir, set_param


def classify(workdir, *paths, monkeypatch):
    """`python -m src.classify PATH...` run in workdir, in this process: its exit status."""
    monkeypatch.chdir(workdir)
    monkeypatch.setattr(sys, "argv", ["classify", *map(str, paths)])
    try:
        main()
    except SystemExit as exit:
        return exit.code
    return 0


def test_each_image_gets_its_label_and_a_bad_file_its_own_line(
    trained_model, prepared_dir, tmp_path, monkeypatch, capsys
):
    workdir = make_workdir(tmp_path / "project")
    set_param(workdir, "ensemble.precision", "float32")  # as computed here, whatever this CPU's bfloat16
    (workdir / "models" / "members").mkdir(parents=True)
    shutil.copy(trained_model, workdir / "models" / "members" / "base-42.keras")
    good = []
    for i, digit in enumerate(np.load(prepared_dir / "test.npz")["x"][:4, :, :, 0]):
        image = Image.fromarray(255 - digit).resize((84 + 40 * i, 84 + 40 * i), Image.Resampling.BICUBIC)
        good.append(tmp_path / f"digit{i}.{'jpg' if i % 2 else 'png'}")
        image.convert("RGB" if i % 2 else "L").save(good[-1])
    (tmp_path / "notes.png").write_text("not an image")
    paths = [*good[:2], tmp_path / "notes.png", *good[2:], tmp_path / "missing.png"]

    assert classify(workdir, *paths, monkeypatch=monkeypatch) == 1
    output = capsys.readouterr()
    assert output.err.splitlines() == [
        f"classify: error: {tmp_path}/notes.png: not an image that Pillow reads (PNG or JPEG)",
        f"classify: error: {tmp_path}/missing.png: no such file",
    ]
    probabilities = member_probabilities([trained_model], np.stack([read_digit(path) for path in good]), 32)[0]
    assert output.out.splitlines() == [
        f"{path}: {each.argmax()} ({each.max():.3f})" for path, each in zip(good, probabilities, strict=True)
    ]
    assert re.fullmatch(r"\S+digit0\.png: \d \(\d\.\d{3}\)", output.out.splitlines()[0])


def test_the_saved_model_labels_as_its_members_do(trained_model, prepared_dir, tmp_path, monkeypatch, capsys):
    workdir = make_workdir(tmp_path / "project")
    write_saved_ensemble([trained_model], workdir / "models" / "ensemble")
    digits = np.load(prepared_dir / "test.npz")["x"][:3, :, :, 0]
    paths = [tmp_path / f"digit{i}.png" for i in range(len(digits))]
    for digit, path in zip(digits, paths, strict=True):
        Image.fromarray(digit).resize((56, 56)).save(path)
    assert classify(workdir, "--model", "models/ensemble", *paths, monkeypatch=monkeypatch) == 0
    probabilities = member_probabilities([trained_model], np.stack([read_digit(path) for path in paths]), 32)[0]
    assert [line.split(" (")[0] for line in capsys.readouterr().out.splitlines()] == [
        f"{path}: {each.argmax()}" for path, each in zip(paths, probabilities, strict=True)
    ]
    assert classify(workdir, "--model", "models/gone", *paths, monkeypatch=monkeypatch) == (
        "classify: error: models/gone: not a readable SavedModel (OSError); `dvc repro export` writes it"
    )


def test_without_trained_members_it_says_to_run_dvc_repro(tmp_path, monkeypatch):
    (tmp_path / "seven.png").write_bytes(b"")
    exit_status = classify(make_workdir(tmp_path / "project"), tmp_path / "seven.png", monkeypatch=monkeypatch)
    assert exit_status == "classify: error: no trained member models/members/base-42.keras; `dvc repro` trains it"
