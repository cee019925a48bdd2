"""How the dashboard divides the terminal: which layout fits a size, and texts that fit a width.

Three layouts, chosen from the terminal's size alone (so a test can name the one it wants):
- `small`: below MIN_WIDTH x MIN_HEIGHT nothing readable fits; a message says what is needed.
- `compact`: layer names, settings and one chart (c switches) side by side, two rows of runs.
- `full`: the layer list with shapes over the settings, four charts, the runs under them.
"""

from __future__ import annotations

MIN_WIDTH, MIN_HEIGHT = 80, 24
FULL_WIDTH, FULL_HEIGHT = 110, 36  # below either, the compact layout
LAYER_ROWS = 14  # every layer, network included, without scrolling
TABLE_MIN = 5  # border, header and two rows
TOP_SHARE = 0.6  # of the rows under the tabs, what the charts get when there is room


def layout_for(width: int, height: int) -> str:
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        return "small"
    if width < FULL_WIDTH or height < FULL_HEIGHT:
        return "compact"
    return "full"


def too_small_message(width: int, height: int) -> str:
    return (
        f"terminal too small: {MIN_WIDTH}x{MIN_HEIGHT} needed, this one is {width}x{height}.\n"
        "Enlarge the window (or make the font smaller); q quits."
    )


def top_rows(layout: str, height: int, key_rows: int, settings_rows: int) -> int:
    """Rows of the top part of the profile tab (layers, settings, charts); the runs get the rest.

    `key_rows` is the key bar's height; `settings_rows` the settings pane's, borders included.
    """
    chrome = (1 + 1 if layout == "compact" else 2 + 2) + key_rows  # header, tab bar
    content = height - chrome
    # compact: the panes have no bottom border, the runs table's top border closes them
    layers = LAYER_ROWS + (1 if layout == "compact" else 2)
    need = layers if layout == "compact" else layers + settings_rows
    top = max(need, round(content * TOP_SHARE))
    return max(1, min(top, content - TABLE_MIN))


def charts_shown(layout: str, count: int, index: int, roofline: bool) -> list[bool]:
    """Which of the profile tab's `count` charts are on screen, the roofline last: the
    compact layout shows one (`index`); the full one the others, or the roofline alone."""
    if layout == "compact":
        return [i == index % count for i in range(count)]
    return [not roofline] * (count - 1) + [roofline]


def fit_words(text: str, width: int, clauses: bool = True) -> str:
    """`text` if it fits in `width` cells, else its longest head that ends at a clause or a word.

    Clause ends (`:` `;` `,` ` (`) are preferred to a bare word end, and nothing is cut mid-word:
    "worker timeline: ms since the run started" at 20 gives "worker timeline".
    """
    if len(text) <= width:
        return text
    if width <= 0:
        return ""
    head = text[: width + 1]
    for marks in (((": ", "; ", ", ", " (") if clauses else ()), (" ",)):
        if not marks:
            continue
        cut = max(head.rfind(m) for m in marks)
        if cut > 0:
            return text[:cut].rstrip(" ,;:")
    return text[:width]  # one long word: nothing shorter reads better
