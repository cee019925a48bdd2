"""Training data: the built-in letters, or EMNIST-letters IDX files a person already has.

Nothing is downloaded. `--data DIR` names a folder holding the four EMNIST
letters files (plain or .gz), as distributed:

    emnist-letters-train-images-idx3-ubyte   emnist-letters-train-labels-idx1-ubyte
    emnist-letters-test-images-idx3-ubyte    emnist-letters-test-labels-idx1-ubyte

IDX: a big-endian header (two zero bytes, a type code, the number of
dimensions, then each dimension as a uint32) followed by the data. EMNIST
letters labels run 1..26 (A..Z); EMNIST stores each image transposed.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

IDX_TYPES: dict[int, Any] = {
    0x08: np.uint8,
    0x09: np.int8,
    0x0B: ">i2",
    0x0C: ">i4",
    0x0D: ">f4",
    0x0E: ">f8",
}
PARTS = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "test-images-idx3-ubyte",
    ("test", "labels"): "test-labels-idx1-ubyte",
}


class DataError(ValueError):
    """Training data that cannot be read; the message is one line."""


@dataclass
class DataSet:
    train_x: np.ndarray  # (n, 1, 28, 28) float32
    train_y: np.ndarray  # (n,) int64, 0 = A
    test_x: np.ndarray
    test_y: np.ndarray
    source: str  # "letters (built-in, seed 0)" or the folder

    def describe(self) -> str:
        return f"{self.source}: {len(self.train_y)} train, {len(self.test_y)} test images"


def read_idx(path) -> np.ndarray:
    """An IDX file (optionally gzipped) as a numpy array; DataError names what is wrong."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in IDX_TYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    dims = data[3]
    head = 4 + 4 * dims
    if dims == 0 or len(data) < head:
        raise DataError(f"{path}: not an IDX file (truncated header)")
    shape = struct.unpack(f">{dims}I", data[4:head])
    dtype = np.dtype(IDX_TYPES[data[2]])
    need = int(np.prod(shape)) * dtype.itemsize
    if len(data) - head != need:
        raise DataError(
            f"{path}: expected {need} bytes of data for shape {shape}, found {len(data) - head}"
        )
    return np.frombuffer(data, dtype=dtype, offset=head).reshape(shape)


def _find(folder: Path, split: str, what: str) -> Path:
    tail = PARTS[(split, what)]
    found = sorted(
        p for p in folder.iterdir() if p.name.endswith(tail) or p.name.endswith(tail + ".gz")
    )
    letters = [p for p in found if "letters" in p.name]
    if not (letters or found):
        raise DataError(
            f"{folder}: no *{tail}[.gz] file (expected EMNIST letters, e.g. emnist-letters-{tail})"
        )
    return (letters or found)[0]


def load_emnist_letters(
    folder, limit_train: int | None = None, limit_test: int | None = None
) -> DataSet:
    """The EMNIST letters train and test splits in `folder`, as network inputs and labels 0..25."""
    from partui.kernels.model.letters import normalize

    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")
    out = []
    for split, limit in (("train", limit_train), ("test", limit_test)):
        images = read_idx(_find(folder, split, "images"))
        labels = read_idx(_find(folder, split, "labels"))
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise DataError(
                f"{folder}: {split} images have shape {images.shape}, expected (n, 28, 28)"
            )
        if labels.ndim != 1 or len(labels) != len(images):
            raise DataError(f"{folder}: {len(labels)} {split} labels for {len(images)} images")
        labels = labels.astype(np.int64)
        if len(labels) and (labels.min() < 1 or labels.max() > 26):
            raise DataError(
                f"{folder}: {split} labels outside 1..26 (EMNIST letters are 1 = A .. 26 = Z)"
            )
        if limit is not None:
            images, labels = images[:limit], labels[:limit]
        pixels = images.transpose(0, 2, 1).astype(np.float32) / np.float32(
            255.0
        )  # EMNIST is transposed
        out += [normalize(pixels), labels - 1]
    train_x, train_y, test_x, test_y = out
    return DataSet(train_x, train_y, test_x, test_y, source=f"EMNIST letters in {folder}")


def builtin_letters(train: int, test: int, seed: int = 0) -> DataSet:
    from partui.kernels.model.letters import make_letters

    train_x, train_y, test_x, test_y = make_letters(train, test, seed)
    return DataSet(train_x, train_y, test_x, test_y, source=f"letters (built-in, seed {seed})")


def write_idx(path, array: np.ndarray) -> None:
    """Write `array` (uint8) as an IDX file: used by the tests, and to hand data to other tools."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())
