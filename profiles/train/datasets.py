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
import math
import os
import stat
import struct
import zlib
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


MAX_DIMS = 8  # EMNIST's files have 1 or 3
MAX_IDX_BYTES = 256 * 2**20  # of data in one file; EMNIST letters' largest holds 98 MB
_READ_CHUNK = 1 << 20  # bytes per read: a gzip stream is inflated at most this far ahead


def _open_regular(path: Path) -> int:
    """A read-only descriptor of a regular file; a FIFO or a device is refused unread (opened
    non-blocking: a FIFO with no writer would otherwise hang the open)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise DataError(f"{path}: not a regular file (a FIFO, device, socket or folder)")
    os.set_blocking(fd, True)
    return fd


def _read_into(f, buf: bytearray) -> int:
    """Fill `buf` from `f` a chunk at a time; the bytes read."""
    view, got = memoryview(buf), 0
    while got < len(buf):
        n = f.readinto(view[got : got + _READ_CHUNK])
        if not n:
            break
        got += n
    return got


def read_idx(path) -> np.ndarray:
    """An IDX file (optionally gzipped) as a numpy array; DataError names what is wrong.

    The header's shape is checked before the data is read: at most MAX_DIMS dimensions and
    MAX_IDX_BYTES of data, and exactly that much data follows (a gzip stream is inflated
    into a buffer of the claimed size and refused as soon as it holds more).
    """
    path = Path(path)
    fd = _open_regular(path)
    raw = os.fdopen(fd, "rb")
    try:
        with gzip.GzipFile(fileobj=raw, mode="rb") if path.suffix == ".gz" else raw as f:
            return _read_idx(f, path, None if path.suffix == ".gz" else os.fstat(fd).st_size)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    finally:
        raw.close()


def _read_idx(f, path: Path, file_size: int | None) -> np.ndarray:
    magic = f.read(4)
    if len(magic) < 4 or magic[:2] != b"\0\0" or magic[2] not in IDX_TYPES:
        raise DataError(f"{path}: not an IDX file (bad magic number)")
    dims = magic[3]
    if dims == 0 or dims > MAX_DIMS:
        raise DataError(f"{path}: not an IDX file ({dims} dimensions; at most {MAX_DIMS})")
    head = f.read(4 * dims)
    if len(head) < 4 * dims:
        raise DataError(f"{path}: not an IDX file (truncated header)")
    shape = struct.unpack(f">{dims}I", head)
    dtype = np.dtype(IDX_TYPES[magic[2]])
    need = math.prod(shape) * dtype.itemsize
    if need > MAX_IDX_BYTES:
        raise DataError(
            f"{path}: its header claims {need / 2**20:.0f} MiB of data (shape {shape}), more "
            f"than the {MAX_IDX_BYTES / 2**20:.0f} MiB partui reads from one file"
        )
    if file_size is not None and file_size - 4 - 4 * dims != need:
        found = file_size - 4 - 4 * dims
        raise DataError(f"{path}: expected {need} bytes of data for shape {shape}, found {found}")
    try:
        buf = bytearray(need)
    except MemoryError:
        raise DataError(f"{path}: not enough memory for its {need / 2**20:.0f} MiB") from None
    got = _read_into(f, buf)
    if got < need:
        raise DataError(f"{path}: expected {need} bytes of data for shape {shape}, found {got}")
    if f.read(1):
        raise DataError(
            f"{path}: expected {need} bytes of data for shape {shape}, found more "
            "(the file holds more than its header says)"
        )
    return np.frombuffer(buf, dtype=dtype).reshape(shape)


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


# Making the images holds about 3.5 times their float32 bytes at its peak; training holds one
# more copy in the run's arrays.
DATA_MEMORY_FACTOR = 5


def memory_shortfall(train: int, test: int) -> str | None:
    """One line if a data set of `train` + `test` 28x28 images would not fit in the memory
    this process may still use; None if it would."""
    from partui.profiles.system.memory_limits import shortfall

    need = DATA_MEMORY_FACTOR * (train + test) * 28 * 28 * 4
    short = shortfall(need)
    return f"the data set {short}" if short else None


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
