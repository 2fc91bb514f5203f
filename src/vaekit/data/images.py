"""Folders of image files (PNG, JPEG, BMP, GIF) read with Pillow.

Layout, as torchvision's ``ImageFolder``: images directly in the folder have no labels; images
in subfolders (searched recursively) are labelled by the subfolder's name, classes sorted by
name. Mixing the two is an error, so that no image silently loses its label.

Colour modes: greyscale (``L``, ``1``, ``LA``) becomes 1 channel; colour (``RGB``, ``RGBA``,
palette ``P``, ``CMYK``, ...) becomes 3 channels ``RGB``. The alpha channel of ``RGBA``/``LA``
is DROPPED (not composited), so transparent pixels keep their stored colour. 16-bit and float
images are refused rather than silently rescaled. All images must share one size and one
of these two modes. Values are divided by 255.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")

_GREY_MODES = {"1", "L", "LA", "La"}
_UNSUPPORTED_MODES = {"I", "F", "I;16", "I;16B", "I;16L", "I;16N"}


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def find_images(root: Path) -> tuple[list[Path], Optional[list[int]], Optional[list[str]]]:
    """Image paths in ``root`` and, when they sit in subfolders, their class indices and names."""
    try:
        entries = sorted(root.iterdir())
    except OSError as exc:
        raise DataError(f"cannot list folder {root}: {exc.strerror or exc}") from None
    top = [p for p in entries if is_image_file(p)]
    classes: list[tuple[str, list[Path]]] = []
    for sub in entries:
        if sub.is_dir() and not sub.name.startswith("."):
            files = sorted(p for p in sub.rglob("*") if is_image_file(p))
            if files:
                classes.append((sub.name, files))
    if top and classes:
        raise DataError(
            f"{root} has images both at its top level (e.g. {top[0].name}) and in subfolders "
            f"(e.g. {classes[0][0]}/); put all images in class subfolders, or all at the top level"
        )
    if top:
        return top, None, None
    if not classes:
        raise DataError(
            f"{root} holds no images ({', '.join(IMAGE_SUFFIXES)}), neither at its top level nor in subfolders"
        )
    paths = [p for _, files in classes for p in files]
    labels = [i for i, (_, files) in enumerate(classes) for _ in files]
    return paths, labels, [name for name, _ in classes]


def _target_mode(mode: str, path: Path) -> str:
    if mode in _UNSUPPORTED_MODES:
        raise DataError(
            f"{path.name} is a {mode} (16-bit or float) image; convert the images to 8-bit greyscale or RGB"
        )
    return "L" if mode in _GREY_MODES else "RGB"


def read_images(paths: Sequence[Path]) -> np.ndarray:
    """Read images of one size and mode into a float32 array (N, C, H, W) in [0, 1]."""
    from PIL import Image, UnidentifiedImageError

    out: Optional[np.ndarray] = None
    first: Optional[tuple[Path, tuple[int, int], str]] = None
    for i, path in enumerate(paths):
        try:
            with Image.open(path) as im:
                mode = _target_mode(im.mode, path)
                if first is None:
                    first = (path, im.size, mode)
                elif im.size != first[1]:
                    raise DataError(
                        f"images differ in size: {first[0]} is {first[1][0]}x{first[1][1]} but {path} is "
                        f"{im.size[0]}x{im.size[1]}; resize them to one size"
                    )
                elif mode != first[2]:
                    names = {"L": "greyscale", "RGB": "colour"}
                    raise DataError(
                        f"images differ in mode: {first[0]} is {names[first[2]]} ({first[2]}) but {path} is "
                        f"{names[mode]} ({im.mode}); convert them all to greyscale or all to RGB"
                    )
                pixels = np.asarray(im.convert(mode) if im.mode != mode else im, dtype=np.uint8)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            if isinstance(exc, DataError):
                raise
            raise DataError(f"cannot read image {path} ({exc}); remove or replace the file") from None
        if out is None:
            channels = 1 if pixels.ndim == 2 else pixels.shape[2]
            out = np.empty((len(paths), channels, pixels.shape[0], pixels.shape[1]), dtype=np.uint8)
        out[i] = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    if out is None:
        raise DataError("no images to read")
    return out.astype(np.float32) / np.float32(255.0)


def read_image_folder(
    root: Path, class_names: Optional[Sequence[str]] = None
) -> tuple[np.ndarray, Optional[np.ndarray], Optional[list[str]]]:
    """Images (N, C, H, W) float32 in [0, 1], labels int64 (N,) or None, class names or None.

    ``class_names`` fixes the folder-name -> index mapping (as stored at training time).
    """
    paths, labels, names = find_images(root)
    x = read_images(paths)
    if labels is None:
        return x, None, None
    y = np.asarray(labels, dtype=np.int64)
    if class_names is not None:
        lookup = {name: i for i, name in enumerate(class_names)}
        unknown = [n for n in names if n not in lookup]
        if unknown:
            raise DataError(
                f"{root} has class folder(s) {', '.join(unknown)} the model does not know "
                f"({', '.join(class_names)})"
            )
        y = np.asarray([lookup[n] for n in names], dtype=np.int64)[y]
        names = list(class_names)
    return x, y, names
