"""Command lines tests share."""

# the quickest sweep: one inline run of gelu3 at batch 2, one repeat, no warm-up
TINY_SWEEP = (
    "sweep --layer gelu3 --strategies none --executors inline --workers 1 --batch 2 --repeat 1 "
    "--warmup 0"
).split()
