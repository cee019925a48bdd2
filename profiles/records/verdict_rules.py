"""The rules behind every "faster" / "slower" (significance.py applies them), as plain
constants: `partui --help` states them without loading what applies them."""

# A ratio of medians nearer 1 than this does not count as a difference: on a machine shared
# with other work, back-to-back runs of one configuration drift by several percent.
NOISE_FLOOR = 1.10
LEVEL = 0.95  # of the bootstrap interval
ALPHA = 0.05  # of the Mann-Whitney test, two-sided
MIN_REPEATS = 5  # per side: with fewer, neither test can reach its level honestly
# An interval whose ends are further apart than this (high / low) cannot say "no difference"
# either: the repeats are too spread to conclude.
SPREAD_LIMIT = 1.5

FASTER, SLOWER = "faster", "slower"
NO_DIFFERENCE = "no significant difference"
TOO_FEW = "too few repeats"
TOO_SPREAD = "too spread to conclude"


def method_text(noise_floor: float | None = NOISE_FLOOR) -> str:
    """The rule behind every verdict, in one line for a report's legend."""
    floor = NOISE_FLOOR if noise_floor is None else noise_floor
    return (
        f"'faster'/'slower' only where Mann-Whitney U gives p < {ALPHA:g} and the whole "
        f"{100 * LEVEL:.0f}% bootstrap interval [low-high] of the ratio of medians lies "
        f"beyond the noise floor {floor:.2f}x (and beyond how far apart one configuration's "
        f"runs were, where it had several); fewer than {MIN_REPEATS} repeats a side: "
        "no verdict"
    )
