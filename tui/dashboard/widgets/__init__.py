"""The profile tab's panes: machine header, layer list, run settings, table of runs, the
conditions line under it."""
