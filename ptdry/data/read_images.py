"""Reading a folder of images (Pillow, imported here only): one class per subfolder.

``root/cat/1.png, root/dog/2.png`` gives ``(image, label)`` rows with ``classes`` ``["cat",
"dog"]`` (sorted); a folder of image files alone gives the images. Images are ``uint8``
arrays (height × width × channels; height × width for grey).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ptdry.data.sources import Source
from ptdry.errors import DataError

__all__ = ["IMAGE_EXTENSIONS", "read_images"]

#: File endings taken as images.
IMAGE_EXTENSIONS = frozenset([".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"])


def _images(folder: Path) -> list[Path]:
    return sorted(f for f in folder.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)


class _ImageSource(Source):
    def __init__(
        self, files: list[Path], labels: list[int] | None, classes: list[str] | None, options: dict[str, Any]
    ) -> None:
        self.files, self.labels, self.classes = files, labels, classes
        self.mode, self.size = options.get("mode"), options.get("size")
        self.supervised = labels is not None

    def __len__(self) -> int:
        return len(self.files)

    def get(self, i: int) -> Any:
        from PIL import Image, UnidentifiedImageError

        path = self.files[i]
        try:
            with Image.open(path) as image:
                if self.mode:
                    image = image.convert(self.mode)
                if self.size:
                    image = image.resize(tuple(self.size))
                array = np.asarray(image)
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            raise DataError(f"{path}: cannot be read as an image ({exc})") from None
        return array if self.labels is None else (array, np.int64(self.labels[i]))


def read_images(path: str, options: dict[str, Any]) -> Source:
    """The images under ``path``; options ``mode`` (Pillow's, e.g. ``"L"`` or ``"RGB"``) and
    ``size`` (``(width, height)`` to resize to)."""
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"{path}: an image folder must be a directory")
    folders = sorted(d for d in root.iterdir() if d.is_dir())
    if folders:
        classes = [d.name for d in folders]
        pairs = [(f, label) for label, d in enumerate(folders) for f in _images(d)]
        files, labels = [f for f, _ in pairs], [label for _, label in pairs]
    else:
        classes, files, labels = None, _images(root), None
    if not files:
        raise DataError(f"{path}: no images ({', '.join(sorted(IMAGE_EXTENSIONS))}) in it or its subfolders")
    return _ImageSource(files, labels, classes, options)
