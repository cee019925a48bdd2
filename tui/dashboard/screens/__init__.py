"""Modal screens: help, the snapshot browser, comparing two snapshots (`modals`)."""
