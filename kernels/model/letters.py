"""A seeded data set of 28x28 letter images, A-Z, drawn from glyphs defined here.

Each glyph is a few strokes (polylines) on a 4 x 6 grid, y down. An image draws
one glyph with a random affine transform (scale, aspect, rotation, shear,
shift) and a random stroke width, anti-aliased by distance to the strokes, then
adds Gaussian noise. Pixels are in [0, 1] before `normalize` maps them to
about zero mean. Train and test splits come from independent random streams of
one seed, so they never share an image.
"""

from __future__ import annotations

import numpy as np

SIZE = 28
CLASSES = 26
Stroke = list[tuple[float, float]]
_O: Stroke = [(1, 0), (3, 0), (4, 1), (4, 5), (3, 6), (1, 6), (0, 5), (0, 1), (1, 0)]
_P: Stroke = [(0, 6), (0, 0), (3, 0), (4, 1), (4, 2), (3, 3), (0, 3)]
GLYPHS: dict[str, list[Stroke]] = {
    "A": [[(0, 6), (2, 0), (4, 6)], [(1, 3.5), (3, 3.5)]],
    "B": [
        [(0, 0), (0, 6)],
        [(0, 0), (3, 0), (4, 1), (4, 2), (3, 3), (0, 3)],
        [(3, 3), (4, 4), (4, 5), (3, 6), (0, 6)],
    ],
    "C": [[(4, 1), (3, 0), (1, 0), (0, 1), (0, 5), (1, 6), (3, 6), (4, 5)]],
    "D": [[(0, 0), (0, 6), (3, 6), (4, 5), (4, 1), (3, 0), (0, 0)]],
    "E": [[(4, 0), (0, 0), (0, 6), (4, 6)], [(0, 3), (3, 3)]],
    "F": [[(4, 0), (0, 0), (0, 6)], [(0, 3), (3, 3)]],
    "G": [[(4, 1), (3, 0), (1, 0), (0, 1), (0, 5), (1, 6), (3, 6), (4, 5), (4, 3), (2, 3)]],
    "H": [[(0, 0), (0, 6)], [(4, 0), (4, 6)], [(0, 3), (4, 3)]],
    "I": [[(1, 0), (3, 0)], [(2, 0), (2, 6)], [(1, 6), (3, 6)]],
    "J": [[(1, 0), (4, 0)], [(3, 0), (3, 5), (2, 6), (1, 6), (0, 5)]],
    "K": [[(0, 0), (0, 6)], [(4, 0), (0, 4)], [(1, 3), (4, 6)]],
    "L": [[(0, 0), (0, 6), (4, 6)]],
    "M": [[(0, 6), (0, 0), (2, 3), (4, 0), (4, 6)]],
    "N": [[(0, 6), (0, 0), (4, 6), (4, 0)]],
    "O": [_O],
    "P": [_P],
    "Q": [_O, [(2, 4), (4, 6.5)]],
    "R": [_P, [(2, 3), (4, 6)]],
    "S": [
        [
            (4, 1),
            (3, 0),
            (1, 0),
            (0, 1),
            (0, 2),
            (1, 3),
            (3, 3),
            (4, 4),
            (4, 5),
            (3, 6),
            (1, 6),
            (0, 5),
        ]
    ],
    "T": [[(0, 0), (4, 0)], [(2, 0), (2, 6)]],
    "U": [[(0, 0), (0, 5), (1, 6), (3, 6), (4, 5), (4, 0)]],
    "V": [[(0, 0), (2, 6), (4, 0)]],
    "W": [[(0, 0), (1, 6), (2, 2), (3, 6), (4, 0)]],
    "X": [[(0, 0), (4, 6)], [(4, 0), (0, 6)]],
    "Y": [[(0, 0), (2, 3), (4, 0)], [(2, 3), (2, 6)]],
    "Z": [[(0, 0), (4, 0), (0, 6), (4, 6)]],
}
LETTERS = "".join(sorted(GLYPHS))


def _segments() -> np.ndarray:
    """(26, S, 2, 2): each glyph's segments (from, to) as (x, y), centred; short glyphs padded far
    away."""
    per = []
    for letter in LETTERS:
        segs = [(a, b) for line in GLYPHS[letter] for a, b in zip(line[:-1], line[1:])]
        per.append(np.array(segs, dtype=np.float64) - (2.0, 3.0))
    most = max(len(s) for s in per)
    out = np.full((CLASSES, most, 2, 2), 1e3)
    for i, s in enumerate(per):
        out[i, : len(s)] = s
    return out


SEGMENTS = _segments()


_ink_kernel: list = []


def _ink():
    """A numba kernel (compiled on first use): ink of each pixel from its distance to the nearest
    stroke."""
    if not _ink_kernel:
        from numba import njit

        @njit(cache=True, nogil=True)
        def ink(pts, reach, out):
            n, segs = pts.shape[0], pts.shape[1]
            size = out.shape[1]
            for k in range(n):
                for i in range(size):
                    py = i + 0.5
                    for j in range(size):
                        px = j + 0.5
                        best = 1e18
                        for s in range(segs):
                            ax, ay = pts[k, s, 0, 0], pts[k, s, 0, 1]
                            dx, dy = pts[k, s, 1, 0] - ax, pts[k, s, 1, 1] - ay
                            rx, ry = px - ax, py - ay
                            t = (rx * dx + ry * dy) / max(dx * dx + dy * dy, 1e-9)
                            t = min(max(t, 0.0), 1.0)
                            ex, ey = rx - t * dx, ry - t * dy
                            best = min(best, ex * ex + ey * ey)
                        out[k, i, j] = min(max(reach[k] - np.sqrt(best), 0.0), 1.0)

        _ink_kernel.append(ink)
    return _ink_kernel[0]


def render(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Images (n, 28, 28) in [0, 1] of the letters `labels` (0 = A), randomly transformed."""
    n = len(labels)
    out = np.empty((n, SIZE * SIZE), np.float32)
    scale = rng.uniform(2.4, 3.4, n)  # pixels per grid unit: a glyph is 14-20 px tall
    aspect = rng.uniform(0.8, 1.2, n)
    angle = np.deg2rad(rng.uniform(-14, 14, n))
    shear = rng.uniform(-0.25, 0.25, n)
    shift = rng.uniform(-2.5, 2.5, (n, 2))
    width = rng.uniform(1.4, 3.2, n)
    noise = rng.uniform(0.0, 0.15, n)
    cos, sin = np.cos(angle), np.sin(angle)
    # x' = R (S (shear) x) + centre + shift
    a = np.empty((n, 2, 2))
    a[:, 0, 0] = cos * scale * aspect
    a[:, 0, 1] = cos * scale * shear - sin * scale
    a[:, 1, 0] = sin * scale * aspect
    a[:, 1, 1] = sin * scale * shear + cos * scale
    centre = SIZE / 2 + shift
    # the glyphs' segments in pixel coordinates: p = a @ q + centre
    pts = np.einsum("nij,nsej->nsei", a, SEGMENTS[labels]) + centre[:, None, None, :]
    _ink()(pts, width / 2 + 0.5, out.reshape(n, SIZE, SIZE))
    out += rng.standard_normal(out.shape, dtype=np.float32) * noise[:, None].astype(np.float32)
    np.clip(out, 0.0, 1.0, out=out)
    return out.reshape(n, SIZE, SIZE)


def normalize(images: np.ndarray) -> np.ndarray:
    """Pixels in [0, 1] -> network inputs (n, 1, 28, 28), float32, about zero mean."""
    return ((images.astype(np.float32) - np.float32(0.2)) / np.float32(0.35))[:, None]


def make_split(n: int, seed: int, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(inputs (n, 1, 28, 28) float32, labels (n,) int64) of one split ("train" or "test")."""
    rng = np.random.default_rng([seed, *split.encode()])
    labels = rng.permutation(np.arange(n) % CLASSES).astype(np.int64)  # balanced classes
    return normalize(render(labels, rng)), labels


def make_letters(train: int, test: int, seed: int = 0):
    """(train_x, train_y, test_x, test_y) of the built-in letters."""
    return (*make_split(train, seed, "train"), *make_split(test, seed, "test"))
