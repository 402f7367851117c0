"""Digit images as a person has them (PNG or JPEG, any size, dark ink on white or white on black, grey or
colour) made into digits as MNIST made its own: bright ink on black, fitted into 20x20 keeping the aspect
ratio, anti-aliased, and placed in 28x28 by its centre of mass. uint8 (28, 28, 1), as the prepare stage's."""

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .stage_process import UserError

SIZE, BOX = 28, 20  # MNIST's: the digit fits a 20x20 box in a 28x28 field
INK = 0.2  # fraction of the ink's brightest: fainter pixels (paper grain, JPEG ringing) are background


def read_digit(path):
    """The digit in the image file at path, (28, 28, 1) uint8; a UserError says why a file cannot be one."""
    try:
        with Image.open(path) as image:
            image.load()  # decodes it all now: a truncated file fails here
            grey = on_background(ImageOps.exif_transpose(image))  # a phone's photo, upright
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: a folder, not an image") from None
    except UnidentifiedImageError:
        raise UserError(f"{path}: not an image that Pillow reads (PNG or JPEG)") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise UserError(f"{path}: a damaged or truncated image ({error})") from None
    digit = mnist_digit(grey)
    if digit is None:
        raise UserError(f"{path}: a blank image, no ink found")
    return digit


def on_background(image):
    """The image as grey levels (H, W) float32 0..255, a transparent part filled with the paper's colour: the
    opposite of the ink's, so that dark ink on a transparent canvas reads as on white, and white ink as on black."""
    if image.mode.startswith("I;16"):  # 16-bit grey, which Pillow's conversions clip at 255
        image = Image.fromarray(np.round(np.asarray(image, np.float32) / 257).astype(np.uint8))
    grey, alpha = np.split(np.asarray(image.convert("RGBA").convert("LA"), np.float32), 2, axis=-1)
    grey, alpha = grey[..., 0], alpha[..., 0] / 255
    if alpha.min() == 1:
        return grey
    ink_is_dark = np.average(grey, weights=alpha + 1e-6) < 128
    return grey * alpha + (255 if ink_is_dark else 0) * (1 - alpha)


def mnist_digit(grey):
    """The digit in grey (H, W) 0..255, either polarity, as MNIST's (28, 28, 1) uint8; None where it has no ink."""
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    background = np.median(border)  # the paper: the border is mostly background, whatever the ink's colour
    ink = np.abs(grey - background)  # (H, W), bright ink on black either way
    if ink.max() == 0:
        return None
    strong = ink >= INK * ink.max()
    rows, cols = np.flatnonzero(strong.any(axis=1)), np.flatnonzero(strong.any(axis=0))
    ink = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]  # (h, w), cropped to the ink
    scale = BOX / max(ink.shape)
    height, width = max(1, round(ink.shape[0] * scale)), max(1, round(ink.shape[1] * scale))
    boxed = np.asarray(Image.fromarray(np.ascontiguousarray(ink)).resize((width, height), Image.Resampling.LANCZOS))
    boxed = np.clip(boxed * (255 / boxed.max()), 0, 255)  # (height, width), the brightest ink at 255 as in MNIST
    # Integer moves that bring the centre of mass nearest to pixel (14, 14), where MNIST's lie.
    mass = boxed.sum()
    centre_y = (boxed.sum(axis=1) @ np.arange(height)) / mass
    centre_x = (boxed.sum(axis=0) @ np.arange(width)) / mass
    top = int(np.clip(round(SIZE / 2 - centre_y), 0, SIZE - height))
    left = int(np.clip(round(SIZE / 2 - centre_x), 0, SIZE - width))
    digit = np.zeros((SIZE, SIZE, 1), np.uint8)
    digit[top : top + height, left : left + width, 0] = np.round(boxed).astype(np.uint8)
    return digit
