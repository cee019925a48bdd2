"""The one colour list of the charts: series take their colours in this order everywhere
(runs on the train tab, series in the lab, configurations on the history chart, cores)."""

SERIES = ("cyan", "magenta", "green", "yellow", "blue", "red", "orange", "white")
OTHERS = "red"  # CPU used by other processes, beside the cores' own colours
CORES = tuple(c for c in SERIES if c != OTHERS)


def series_color(i: int) -> str:
    return SERIES[i % len(SERIES)]
