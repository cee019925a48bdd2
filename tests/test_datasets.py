"""The built-in letters and the EMNIST-letters IDX loader (on small IDX files written here)."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pytest

from partui.kernels.model import letters
from partui.profiles.train import datasets


def test_letters_are_seeded_balanced_and_split():
    x, y = letters.make_split(52, 3, "train")
    x2, y2 = letters.make_split(52, 3, "train")
    assert x.shape == (52, 1, 28, 28) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    assert np.bincount(y, minlength=26).tolist() == [2] * 26
    tx, _ = letters.make_split(52, 3, "test")
    assert not np.array_equal(tx, x)
    other, _ = letters.make_split(52, 4, "train")
    assert not np.array_equal(other, x)


def test_letters_vary_but_stay_on_the_canvas():
    rng = np.random.default_rng(0)
    imgs = letters.render(np.zeros(20, dtype=np.int64), rng)  # twenty A's
    assert imgs.min() >= 0 and imgs.max() <= 1
    ink = imgs.sum(axis=(1, 2))
    assert (ink > 20).all()  # every glyph drew strokes
    assert len({float(v) for v in ink}) == 20  # no two alike
    assert not (imgs[:, 0, :] > 0.9).any()  # the strokes stay off the border


def test_letters_differ_from_each_other():
    """Mean images per class: each is nearer its own class's fresh samples than any other
    class's."""
    x, y = letters.make_split(26 * 12, 1, "train")
    centroids = np.stack([x[y == k].mean(axis=0).ravel() for k in range(26)])
    tx, ty = letters.make_split(26 * 4, 2, "test")
    d = ((tx.reshape(len(tx), -1)[:, None] - centroids[None]) ** 2).sum(-1)
    assert (d.argmin(axis=1) == ty).mean() > 0.25  # nearest centroid: ~0.4, chance 1/26


def _write_emnist(folder, n_train=7, n_test=3, gz=False):
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    sets = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(1, 27, n).astype(np.uint8)
        datasets.write_idx(folder / f"emnist-letters-{split}-images-idx3-ubyte{suffix}", images)
        datasets.write_idx(folder / f"emnist-letters-{split}-labels-idx1-ubyte{suffix}", labels)
        sets[split] = (images, labels)
    return sets


@pytest.mark.parametrize("gz", [False, True])
def test_emnist_idx_loads(tmp_path, gz):
    sets = _write_emnist(tmp_path, gz=gz)
    data = datasets.load_emnist_letters(tmp_path)
    assert data.train_x.shape == (7, 1, 28, 28) and data.test_x.shape == (3, 1, 28, 28)
    images, labels = sets["train"]
    assert np.array_equal(data.train_y, labels.astype(np.int64) - 1)  # 1 = A -> 0
    # EMNIST stores images transposed: the loader turns them upright
    expected = letters.normalize(images.transpose(0, 2, 1).astype(np.float32) / 255)
    assert np.allclose(data.train_x, expected)
    assert "7 train, 3 test" in data.describe()
    assert len(datasets.load_emnist_letters(tmp_path, limit_train=4).train_y) == 4


def test_idx_round_trip_and_errors(tmp_path):
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    datasets.write_idx(tmp_path / "a.idx", a)
    assert np.array_equal(datasets.read_idx(tmp_path / "a.idx"), a)
    (tmp_path / "bad.idx").write_bytes(b"PK\x03\x04junk")
    with pytest.raises(datasets.DataError, match="not an IDX file"):
        datasets.read_idx(tmp_path / "bad.idx")
    (tmp_path / "short.idx").write_bytes((tmp_path / "a.idx").read_bytes()[:-3])
    with pytest.raises(datasets.DataError, match="expected 24 bytes"):
        datasets.read_idx(tmp_path / "short.idx")


def test_emnist_folder_errors(tmp_path):
    with pytest.raises(datasets.DataError, match="not a folder"):
        datasets.load_emnist_letters(tmp_path / "nowhere")
    with pytest.raises(datasets.DataError, match="train-images-idx3-ubyte"):
        datasets.load_emnist_letters(tmp_path)
    sets = _write_emnist(tmp_path)
    datasets.write_idx(
        tmp_path / "emnist-letters-test-labels-idx1-ubyte", np.zeros(len(sets["test"][1]), np.uint8)
    )
    with pytest.raises(datasets.DataError, match="outside 1..26"):
        datasets.load_emnist_letters(tmp_path)


# ---- hostile IDX input ------------------------------------------------------------------------

TRAIN_FROM = textwrap.dedent("""
    import re, sys
    from partui.tui.cli.main import main
    code = main(["train", "--data", sys.argv[1], "--epochs", "1", "--out", sys.argv[2]])
    # this process's own peak (ru_maxrss would count the forking parent's before exec)
    print(code, int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read())[1]) // 1024)
""")


def train_from(folder, tmp_path):
    """`partui train --data folder` in a child: (exit code, peak RSS in MB, stderr)."""
    proc = subprocess.run(
        [sys.executable, "-c", TRAIN_FROM, str(folder), str(tmp_path / "t.json")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    code, peak_mb = map(int, proc.stdout.split()[-2:])
    return code, peak_mb, proc.stderr


def test_a_fifo_named_like_an_idx_file_is_refused_unread(tmp_path):
    """Opening a FIFO with no writer blocks for ever: it is refused in one line instead."""
    _write_emnist(tmp_path)
    images = tmp_path / "emnist-letters-train-images-idx3-ubyte"
    images.unlink()
    os.mkfifo(images)
    code, _, err = train_from(tmp_path, tmp_path)
    assert code == 2 and err.count("\n") == 2 and "not a regular file" in err, err  # + progress
    assert "Traceback" not in err


@pytest.mark.parametrize(
    "header,word",
    [
        (bytes([0, 0, 8, 255]) + b"\0" * 1020, "255 dimensions"),
        (bytes([0, 0, 8, 3]) + struct.pack(">3I", 2**31, 28, 28), "MiB of data"),
        (bytes([0, 0, 8, 3]) + struct.pack(">2I", 5, 28), "truncated header"),
        (bytes([0, 0, 7, 3]), "bad magic"),
    ],
    ids=["255-dims", "huge-claim", "short-header", "bad-type"],
)
def test_bad_idx_headers_are_one_line(tmp_path, capsys, header, word):
    from partui.tui.cli.main import main

    _write_emnist(tmp_path)
    (tmp_path / "emnist-letters-train-images-idx3-ubyte").write_bytes(header)
    capsys.readouterr()
    code = main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "t.json")])
    err = capsys.readouterr().err
    assert code == 2 and word in err and "Error" not in err, err
    assert err.splitlines()[-1].startswith("partui: error:")


def gzip_bomb(path, claimed_images: int, inflated_mib: int) -> None:
    """An IDX header claiming `claimed_images` 28x28 images, then `inflated_mib` MiB of
    zeros, gzipped a MiB at a time (the file is under 5 MB: level 1, fastest to make)."""
    z = zlib.compressobj(1, zlib.DEFLATED, 31)  # 31: a gzip wrapper
    zeros = bytes(2**20)
    with open(path, "wb") as f:
        f.write(z.compress(bytes([0, 0, 8, 3]) + struct.pack(">3I", claimed_images, 28, 28)))
        for _ in range(inflated_mib):
            f.write(z.compress(zeros))
        f.write(z.flush())


@pytest.mark.parametrize(
    "claimed_images, inflated_mib, bound_mb",
    [(1000, 200, 200), (100_000, 200, 200), (100_000, 1024, 300)],
    ids=["small-claim", "large-claim", "1-gib"],
)
def test_a_gzip_bomb_is_refused_within_a_memory_bound(
    tmp_path, claimed_images, inflated_mib, bound_mb
):
    """200 MiB or 1 GiB of zeros behind a header claiming 0.8 or 78 MB: reading stops at the
    claim, and peak memory stays far below the inflated size."""
    _write_emnist(tmp_path)
    (tmp_path / "emnist-letters-train-images-idx3-ubyte").unlink()
    gzip_bomb(tmp_path / "emnist-letters-train-images-idx3-ubyte.gz", claimed_images, inflated_mib)
    code, peak_mb, err = train_from(tmp_path, tmp_path)
    assert code == 2 and "holds more than its header says" in err, err
    assert peak_mb < bound_mb, peak_mb
