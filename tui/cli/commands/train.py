"""`partui train`: real SGD training of the network, sync or Hogwild!, on threads or processes,
or sync on Dask workers."""

from __future__ import annotations

import signal
import sys

from partui.tui.cli.commands.options import add_scheduler_argument, scheduler_from
from partui.tui.cli.commands.preflight import compile_ahead
from partui.tui.cli.commands.run_report import dask_where
from partui.tui.cli.commands.train_measures import measures_report
from partui.tui.cli.errors import UsageError, stop_words
from partui.tui.text.safe_text import printable
from partui.tui.text.table import print_json, table

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:
    from pathlib import Path

EXIT_INTERRUPTED = 130
EXIT_USAGE = 2  # an output that could not be written


def register(sub) -> None:
    sub.add_parser(
        "train",
        help="train the network on the letters (sync or Hogwild!), measured",
        description="Train the network with SGD on 28x28 letters (A-Z): the built-in, seeded "
        "data set, or EMNIST letters IDX files with --data. Each epoch reports the "
        "train loss, test accuracy, images/s, time per phase and each worker's share "
        "of the work; then each worker's step phases (compute, wait, combine, update) "
        "and the straggler gap, and under Hogwild! the staleness of the gradients and the "
        "overlapping writes; progress goes to stderr. A snapshot (loss curve, accuracy, "
        "configuration, the spans of a sample of steps) and the learned weights "
        "(.npz, PyTorch layouts) are saved at the end, or at Ctrl+C with what was "
        "learned so far (exit 130). --executor dask trains on Dask workers (a LocalCluster "
        "partui starts, or --scheduler): the weights stay on the workers and only "
        "gradients move; the Dask figures (bytes and ms per step) are printed too. "
        "Exit 0 when training finished, 1 when the loss diverged or a Dask worker was "
        "lost, 2 for bad input.",
        build=_add_options,
    )


def _add_options(p) -> None:
    """The options, with TrainConfig's defaults: loaded only for `partui train`."""
    from partui.profiles.records.train_config import TrainConfig

    d = TrainConfig()
    p.add_argument(
        "--epochs", type=int, default=d.epochs, metavar="N", help="passes over the training set"
    )
    p.add_argument("--batch", type=int, default=d.batch, metavar="B", help="samples per SGD step")
    p.add_argument("--lr", type=float, default=d.lr, metavar="X", help="learning rate")
    p.add_argument(
        "--momentum",
        type=float,
        default=d.momentum,
        metavar="M",
        help="SGD momentum (0: plain SGD); under hogwild each worker keeps its own "
        "velocity, only the weights are shared",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=d.workers,
        metavar="W",
        help="worker threads or processes (dask: Dask workers, one batch shard each)",
    )
    p.add_argument(
        "--executor",
        default=d.executor,
        choices=["inline", "threads", "processes", "dask"],
        metavar="E",
        help="threads (share the arrays), processes (share memory), inline, or dask "
        "(sync only; needs pip install 'partui[dask]')",
    )

    add_scheduler_argument(p)
    p.add_argument(
        "--update",
        default=None,
        choices=["sync", "hogwild"],
        metavar="U",
        help="sync (default): combined gradients, one update per step; hogwild: each worker "
        "updates the shared weights after its own steps, no lock; its report gives the "
        "staleness of the gradients and the overlapping writes, from version counters",
    )
    p.add_argument(
        "--compare-updates",
        action="store_true",
        help="train sync and hogwild on the same settings, interleaved epoch by epoch, and "
        "compare them: images/s, and the images and seconds each needs to reach a loss "
        "(nothing is saved)",
    )
    p.add_argument(
        "--target-loss",
        type=float,
        metavar="L",
        help="--compare-updates: the loss (running mean) to reach; default: the higher of "
        "the two runs' final losses",
    )
    p.add_argument(
        "--no-stamps",
        action="store_true",
        help="hogwild without the version counters (no staleness, no overlaps): only to "
        "measure what the counters cost",
    )
    p.add_argument(
        "--combine",
        default=d.combine,
        choices=["reduce", "locked", "gather"],
        metavar="C",
        help="sync only: per-worker gradient buffers summed (reduce) or one shared "
        "accumulator under a lock (locked); on dask, reduce is a tree of adds on the "
        "workers and gather fetches every gradient here, sums it and sends the sum back",
    )
    p.add_argument(
        "--kernel",
        default=d.kernel,
        choices=["vectorized", "loops"],
        metavar="K",
        help="vectorized or loops (very slow)",
    )
    p.add_argument(
        "--data",
        metavar="DIR",
        help="a folder with EMNIST letters IDX files (emnist-letters-train-images-"
        "idx3-ubyte[.gz], ...); default: the built-in letters. Nothing is downloaded",
    )
    p.add_argument(
        "--train-size",
        type=int,
        default=d.train_size,
        metavar="N",
        help="training images (built-in letters: generated; --data: the first N)",
    )
    p.add_argument("--test-size", type=int, default=d.test_size, metavar="N", help="test images")
    p.add_argument(
        "--seed",
        type=int,
        default=d.seed,
        metavar="K",
        help="seed of the data set, the initial weights and the batch order",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.add_argument(
        "--out",
        metavar="FILE",
        help="snapshot file to write (default: a new train-*.json in the snapshot "
        "folder); the weights go beside it as FILE.weights.npz",
    )
    p.add_argument(
        "--force", action="store_true", help="replace --out (and its weights) if they exist"
    )
    p.set_defaults(func=cmd_train)


def _config(args):
    from partui.profiles.records.train_config import TrainConfig, TrainConfigError

    d = TrainConfig()
    if args.compare_updates and args.update:
        raise UsageError("--compare-updates trains both update rules: leave out --update")
    if args.compare_updates and args.executor == "dask":
        raise UsageError("--compare-updates needs Hogwild!, which needs shared memory: not dask")
    if args.target_loss is not None and not args.compare_updates:
        raise UsageError("--target-loss applies to --compare-updates")
    if args.target_loss is not None and not (0 < args.target_loss < 1e6):
        raise UsageError(f"--target-loss must be a positive loss, got {args.target_loss!r}")
    cfg = TrainConfig(
        epochs=args.epochs,
        batch=args.batch,
        lr=args.lr,
        momentum=args.momentum,
        workers=args.workers,
        executor=args.executor,
        update=args.update or d.update,
        stamp=not args.no_stamps,
        combine=args.combine,
        kernel=args.kernel,
        data=args.data,
        train_size=args.train_size,
        test_size=args.test_size,
        seed=args.seed,
        scheduler=scheduler_from(args, [args.executor]),
    )
    try:
        cfg.check()
    except TrainConfigError as exc:
        raise UsageError(str(exc)) from None
    if cfg.executor == "dask":  # before any data is made: the extra, the scheduler
        from partui.profiles.executors.dask_connect import available, reachable
        from partui.profiles.records.config import DASK_MISSING

        if not available():
            raise UsageError(DASK_MISSING)
        if cfg.scheduler:
            reachable(cfg.scheduler)
    return cfg


def _out_path(args) -> Path:
    """Where the snapshot goes; checked before any training, so none is lost at the end."""
    from pathlib import Path

    from partui.profiles.files.safe_files import check_target
    from partui.profiles.store.snapshot import default_snapshot_path

    if args.out is None:
        path = default_snapshot_path(stem="train")
        path.parent.mkdir(parents=True, exist_ok=True)
        return path
    try:
        for target in (Path(args.out), Path(f"{args.out}.weights.npz")):
            check_target(target, overwrite=args.force)
    except OSError as exc:
        raise UsageError(str(exc)) from None
    return Path(args.out)


class _Progress:
    """Steps done, loss and images/s on stderr: a line redrawn on a terminal, a line per epoch
    otherwise."""

    def __init__(self, cfg, quiet: bool):
        self.cfg, self.quiet = cfg, quiet
        self.tty = sys.stderr.isatty()
        self.last = 0.0

    def __call__(self, event) -> None:
        from partui.profiles.records.events import StepDone
        from partui.profiles.train.trainer import EpochReport

        if isinstance(event, StepDone) and self.tty and event.elapsed_s - self.last >= 0.25:
            self.last = event.elapsed_s
            print(
                f"\repoch {event.epoch}/{self.cfg.epochs}  step {event.step}  loss {event.loss:.3f}"
                f"  {event.elapsed_s:.1f} s   ",
                end="",
                file=sys.stderr,
                flush=True,
            )
        elif isinstance(event, EpochReport):
            if self.tty:
                print("\r" + " " * 60 + "\r", end="", file=sys.stderr)
            print(
                f"epoch {event.epoch}/{self.cfg.epochs}: loss {event.train_loss:.4f}  "
                f"test accuracy {100 * event.test_accuracy:.1f}%  "
                f"{event.images_per_s:.0f} images/s  {event.elapsed_s:.1f} s",
                file=sys.stderr,
                flush=True,
            )


def cmd_train(args) -> int:
    cfg = _config(args)
    if args.compare_updates and (args.out or args.force):
        raise UsageError("--compare-updates saves nothing: leave out --out and --force")
    out = None if args.compare_updates else _out_path(args)
    from partui.profiles.system import interrupts
    from partui.profiles.train import datasets
    from partui.profiles.train.trainer import Trainer

    short = datasets.memory_shortfall(cfg.train_size, cfg.test_size)
    if short:  # before the images are made: a data set too big fails here, in one line
        raise UsageError(f"--train-size {cfg.train_size} --test-size {cfg.test_size}: {short}")
    print(f"partui train: {cfg.label()}: preparing data", file=sys.stderr, flush=True)
    try:
        if cfg.data:
            data = datasets.load_emnist_letters(cfg.data, cfg.train_size, cfg.test_size)
        else:
            data = datasets.builtin_letters(cfg.train_size, cfg.test_size, cfg.seed)
    except datasets.DataError as exc:
        raise UsageError(str(exc)) from None
    if len(data.train_y) < cfg.batch:
        raise UsageError(f"{data.describe()}: fewer training images than one batch ({cfg.batch})")
    print(printable(f"partui train: {data.describe()}"), file=sys.stderr, flush=True)

    compile_ahead(["network"], cfg.kernel)  # the training step's kernels too (warmup)
    if args.compare_updates:
        from partui.tui.cli.commands.train_measures import run_compare

        return run_compare(args, cfg, data)
    trainer = Trainer(cfg, data, emit=_Progress(cfg, args.json))
    # SIGTERM and SIGHUP end the run like Ctrl+C (what was learned is still saved), and
    # the exit code names the signal
    stopped_by: list[int] = []

    def stop(signum, frame):
        stopped_by.append(signum)
        raise KeyboardInterrupt

    stops = (signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, stop) for sig in stops}
    try:
        result = trainer.run()
    except KeyboardInterrupt:  # before the first epoch started
        interrupts.handled()
        result = trainer.result
        result.interrupted = True
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    fresh = args.out is None  # a default name: numbered if taken, never replaced
    unsaved = None
    try:
        assert out is not None  # --compare-updates returned above
        out, weights = _save_run(out, result, trainer.params, args.force, fresh)
    except OSError as exc:  # the report is still printed: nothing measured is lost
        unsaved = f"training run not saved: {exc}"
    if args.json:
        from partui.profiles.files.checked_json import json_safe

        saved = {"not_saved": unsaved, "snapshot": None} if unsaved else {"snapshot": str(out)}
        print_json(json_safe({**result.to_dict(), **saved}), allow_nan=False)
    else:
        print(printable(train_report(result)))  # the data folder's name, the paths
        if not unsaved:
            print(printable(f"snapshot {out}\nweights  {weights}"))
    if unsaved:
        print(
            f"partui: {printable(unsaved)}; the report above is all there is of this run",
            file=sys.stderr,
        )
        return EXIT_USAGE
    failed = (result.dask or {}).get("error")
    if failed:
        print(
            f"partui: training stopped: {failed}; the snapshot holds what was learned before",
            file=sys.stderr,
        )
        return 1
    if result.interrupted:
        how = stop_words(stopped_by[0]) if stopped_by else "interrupted"
        print(f"partui: {how}: the snapshot holds what was learned so far", file=sys.stderr)
        return 128 + stopped_by[0] if stopped_by else EXIT_INTERRUPTED
    losses = [p[2] for p in result.loss_curve]
    if not losses or not all(map(_finite, losses[-5:])):
        print(
            "partui: training diverged (the loss is not finite); try a smaller --lr",
            file=sys.stderr,
        )
        return 1
    return 0


def _finite(v) -> bool:
    return v == v and abs(v) != float("inf")


def _save_run(path: Path, result, params, overwrite: bool, unique: bool) -> tuple[Path, Path]:
    """The snapshot at `path` (numbered if taken and `unique`), then the weights beside it
    under the snapshot's own name (SNAPSHOT.weights.npz), then the snapshot again naming
    them: parallel runs never pair one run's snapshot with another's weights."""
    from partui.profiles.train.trainer import save_weights

    result.weights = None
    snapshot = _save_snapshot(path, result, overwrite=overwrite, unique=unique)
    weights = save_weights(f"{snapshot}.weights.npz", params, overwrite=overwrite, unique=unique)
    result.weights = str(weights)
    return _save_snapshot(snapshot, result, overwrite=True, unique=False), weights


def _save_snapshot(path: Path, result, overwrite: bool, unique: bool) -> Path:
    from partui.profiles.store.snapshot import Snapshot, save

    return save(
        Snapshot(note=f"partui train: {result.data}", training=[result.to_dict()]),
        path,
        overwrite=overwrite,
        unique=unique,
    )


def train_report(result) -> str:
    rows = []
    for i, e in enumerate(result.epochs):
        phases = "  ".join(f"{k} {v / max(1, e.steps):.1f}" for k, v in e.phase_ms.items())
        shares = "/".join(f"{100 * s:.0f}" for s in e.worker_busy_share if sum(e.worker_busy_share))
        if not phases and result.interrupted and i == len(result.epochs) - 1:
            # a stopped epoch whose steps left no spans: nothing was measured, say why
            phases, shares = "none measured: stopped before a full step", "-"
        rows.append(
            [
                e.epoch,
                e.steps,
                f"{e.train_loss:.4f}",
                f"{100 * e.train_accuracy:.1f}%",
                f"{100 * e.test_accuracy:.1f}%",
                f"{e.images_per_s:.0f}",
                f"{e.wall_s:.1f}",
                f"{e.elapsed_s:.1f}",
                phases or "-",
                shares or "-",
            ]
        )
    c = result.config
    # hogwild combines nothing: each worker updates the shared weights itself
    how = f"combine {c.combine}" if c.update == "sync" else "(no combine: workers update alone)"
    head = (
        f"{result.data}\nupdate {c.update}  {how}  executor {c.executor}  "
        f"workers {c.workers}  batch {c.batch}  lr {c.lr:g}  momentum {c.momentum:g}  "
        f"pool start-up {result.pool_startup_ms:.0f} ms (not in the times)"
    )
    body = table(
        [
            "epoch",
            "steps",
            "train loss",
            "train acc",
            "test acc",
            "images/s",
            "epoch s",
            "elapsed s",
            "busy ms per step by phase (all workers)",
            "worker share %",
        ],
        rows,
        align="rrrrrrrrll",
    )
    out = head + "\n\n" + body
    measured = measures_report(result)
    if measured:
        out += "\n\n" + measured
    if result.dask:
        out += "\n\n" + dask_train_report(result.dask)
    return out


def dask_train_report(d: dict) -> str:
    """Where a Dask training run ran and what a step moved and cost."""

    t = d["training"]
    mib = 2**20
    lines = dask_where(d)
    lines.append(
        f"set-up (not in the times): {t['data_bytes_out'] / mib:.1f} MiB of training data and "
        f"{t['weights_bytes_out'] / mib:.2f} MiB of weights to the workers in "
        f"{t['setup_ms']:.0f} ms"
    )
    lines.append(
        f"gradients combined by {t['combine']}; {t['weights']}. A gradient is "
        f"{t['gradient_bytes'] / mib:.2f} MiB; per step (medians of {t['steps']}): "
        f"{t['gradient_bytes_between_workers_per_step'] / mib:.2f} MiB between workers, "
        f"{t['gradient_bytes_to_partui_per_step'] / mib:.2f} MiB to partui, "
        f"{t['gradient_bytes_from_partui_per_step'] / mib:.2f} MiB from partui"
    )
    split = (
        f" (gather {t['gather_ms']:.1f}, sum here {t['sum_ms']:.1f}, send back "
        f"{t['scatter_ms']:.1f})"
        if "gather_ms" in t
        else ""
    )
    lines.append(
        f"step {t['step_ms']:.1f} ms; gradient exchange {t['exchange_ms']:.1f} ms{split} "
        "(from the last shard gradient ready to every worker updated)"
    )
    lines += [f"note: {note}" for note in d.get("notes", [])]
    return "\n".join(lines)
