import re

import numpy as np
import pytest
from PIL import Image

from src.digit_images import mnist_digit, read_digit
from src.stage_process import UserError


@pytest.fixture(scope="module")
def digits(prepared_dir):
    """Ten real MNIST digits (28, 28) uint8, bright ink on black, as the prepared data holds them."""
    return np.load(prepared_dir / "test.npz")["x"][:10, :, :, 0]


def rendered(digit, path, size=150, at=(40, 90), dark_ink=True, mode="L", canvas=400, **save):
    """digit as a person would have it: scaled up to size x size px, dark ink on white (or white on black),
    pasted off-centre on a larger canvas, in `mode`, saved at path in the format its suffix names."""
    ink = 255 - digit if dark_ink else digit
    image = Image.new("L", (canvas, canvas), 255 if dark_ink else 0)
    image.paste(Image.fromarray(ink).resize((size, size), Image.Resampling.BICUBIC), at)
    image.convert(mode).save(path, **save)
    return path


def correlation(a, b):
    """How alike two digits (28, 28[, 1]) are, up to a move of a pixel either way: resampling a digit's
    size twice may round its centre of mass to the next pixel."""
    a, b = np.squeeze(a).astype(float), np.squeeze(b).astype(float)
    moves = [np.roll(a, (dy, dx), axis=(0, 1)) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    return max(np.corrcoef(moved.ravel(), b.ravel())[0, 1] for moved in moves)


def centre_of_mass(digit):
    """(row, column) of digit (28, 28)'s brightness."""
    return [(digit.sum(axis=1 - axis) @ np.arange(28)) / digit.sum() for axis in (0, 1)]


@pytest.mark.parametrize(
    "name, options",
    [
        ("dark_ink.png", {}),
        ("white_ink.png", {"dark_ink": False, "size": 60, "at": (300, 10)}),
        ("rgb.jpg", {"mode": "RGB", "size": 380, "at": (5, 15), "canvas": 420, "quality": 70}),
        ("palette.png", {"mode": "P", "size": 90}),
    ],
)
def test_a_rendered_digit_comes_back_as_mnist_has_it(digits, tmp_path, name, options):
    alike = []
    for digit in digits:
        back = read_digit(rendered(digit, tmp_path / name, **options))
        assert back.shape == (28, 28, 1) and back.dtype == np.uint8
        np.testing.assert_allclose(centre_of_mass(back[:, :, 0]), [14, 14], atol=0.5)  # where MNIST's lie
        alike.append(correlation(back, digit))
    assert min(alike) > 0.9 and np.mean(alike) > 0.96


def test_the_ink_is_found_either_way_round(digits):
    digit = digits[0].astype(np.float32)
    np.testing.assert_array_equal(mnist_digit(digit), mnist_digit(255 - digit))
    assert mnist_digit(255 - digit)[0, 0, 0] == 0  # the paper is black, the ink bright
    assert correlation(mnist_digit(digit), digits[0]) > 0.99  # MNIST's own digit stays itself


def test_ink_on_a_transparent_canvas_reads_as_on_paper(digits, tmp_path):
    alpha = Image.fromarray(digits[0]).resize((112, 112), Image.Resampling.BICUBIC)
    for colour in (0, 255):  # black ink, and white ink, the canvas transparent around it
        image = Image.new("LA", alpha.size, colour)
        image.putalpha(alpha)
        image.save(tmp_path / "transparent.png")
        assert correlation(read_digit(tmp_path / "transparent.png"), digits[0]) > 0.9


def test_faint_noise_is_not_ink(digits):
    page = np.full((200, 200), 230.0)  # grey paper
    page[50:162, 30:142] = 230 - np.kron(digits[0], np.ones((4, 4)))[:, :] * 0.8
    page[190, 5] = 210  # a speck of dust, far off
    assert correlation(mnist_digit(page), digits[0]) > 0.9


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such file"),
        (b"ImageId,Label\n1,7\n", "not an image that Pillow reads (PNG or JPEG)"),
        ("truncated", "a damaged or truncated image"),
        ("blank", "a blank image, no ink found"),
    ],
)
def test_a_file_that_is_no_digit_is_named_with_why(digits, tmp_path, content, message):
    path = tmp_path / "digit.png"
    if content in ("truncated", "blank"):
        rendered(digits[0] * (content == "truncated"), path)
        if content == "truncated":
            path.write_bytes(path.read_bytes()[:-200])
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(UserError, match=f"^{re.escape(f'{path}: {message}')}"):
        read_digit(path)
