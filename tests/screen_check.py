"""Checks over a captured screen (plain text): is anything cut mid-word?

Used on Pilot captures (tests/test_layout_screens.py) and on tmux captures of the real
command (tests/test_e2e_tmux.py), at 80x24, 120x40 and 200x60.
"""

from __future__ import annotations

import re

from partui.tui.dashboard.keys import memlab_keys, profile_keys

TITLE = re.compile(r"[╭┌]─ (.+?) ─")
ESSENTIAL = ["r", "space", "esc", "t", "e", "+/-", "s", "x", "o", "m", "?", "q"]


def titles(screen: str) -> list[str]:
    return [m.group(1) for line in screen.splitlines() for m in TITLE.finditer(line)]


def clipped_titles(screen: str, known: list[str]) -> list[str]:
    """Border titles cut by the renderer ("…") or ending mid-word of a known full title."""
    bad = []
    for title in titles(screen):
        if title.endswith("…"):
            bad.append(title)
            continue
        for full in known:
            if full != title and full.startswith(title) and full[len(title)].isalnum():
                bad.append(title)  # a head of `full` that stops inside a word
    return bad


def _cells(line: str) -> dict[int, str]:
    """The text between box-drawing borders on a line, by the column it starts at."""
    out, start = {}, 0
    for m in re.finditer(r"[│┃║]", line + "│"):
        out[start] = line[start : m.start()]
        start = m.end()
    return out


def clipped_phrases(screen: str, phrases: list[str], edge: int = 10, wrap: int = 4) -> list[str]:
    """Phrases of which a pane shows the head or the tail but not the whole.

    A phrase may wrap inside its pane: the lines of the same pane above the one with its
    tail are joined (at most `wrap` of them) before looking for it whole.
    """
    lines = screen.splitlines()
    cells = [_cells(line) for line in lines]
    bad = []
    for phrase in phrases:
        whole = " ".join(phrase.split())
        head, tail = phrase[:edge], phrase[-edge:]
        for i, line_cells in enumerate(cells):
            for col, text in line_cells.items():
                if head not in text and tail not in text:
                    continue
                above = [cells[j].get(col, "") for j in range(max(0, i - wrap + 1), i + 1)]
                below = [cells[j].get(col, "") for j in range(i, min(len(cells), i + wrap))]
                if not any(whole in " ".join(" ".join(part).split()) for part in (above, below)):
                    bad.append(f"{phrase!r} shown as {text.strip()!r}")
    return bad


def footer_problems(screen: str, tab: str = "profile") -> list[str]:
    """Each essential key of the tab with its words, whole, on the last two lines."""
    lines = screen.rstrip("\n").splitlines()[-2:]
    bar = "\n".join(lines)
    essential, _ = memlab_keys() if tab == "memlab" else profile_keys(False, False)
    missing = []
    for item in essential:
        words = "|".join(re.escape(w) for w in {item.words, item.short})
        if not re.search(rf"(^|\s){re.escape(item.key)}  ({words})(\s|$)", bar, re.M):
            missing.append(item.key)
    return missing


def _chart_classes():
    from partui.tui.dashboard.charts import cpu, history, speedup, worker_timeline  # noqa: F401
    from partui.tui.dashboard.charts.base import Redraws

    base = Redraws
    out, todo = [], list(base.__subclasses__())
    while todo:
        cls = todo.pop(0)
        out.append(cls)
        todo += cls.__subclasses__()
    return out


def placeholders() -> list[str]:
    """What each profile chart says when there is nothing to draw yet."""
    return [cls.empty_hint for cls in _chart_classes() if getattr(cls, "empty_hint", "")]


def known_titles() -> list[str]:
    return [cls.chart_title for cls in _chart_classes() if getattr(cls, "chart_title", "")]


def problems(
    screen: str, known_titles: list[str], phrases: list[str], tab: str = "profile"
) -> list[str]:
    out = [f"title cut: {t!r}" for t in clipped_titles(screen, known_titles)]
    out += [f"phrase cut: {p}" for p in clipped_phrases(screen, phrases)]
    out += [f"key missing from the key bar: {k!r}" for k in footer_problems(screen, tab)]
    return out
