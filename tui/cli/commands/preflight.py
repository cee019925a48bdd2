"""What a command checks and prepares before any work: output folders and files it can
write, the native kernels compiled, unwise settings named."""

from __future__ import annotations

import os
import sys
import time

from partui.kernels.model.layers import LAYERS
from partui.tui.cli.errors import UsageError

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)
if TYPE_CHECKING:  # both load on first use: `partui --help` needs neither
    from pathlib import Path

    from partui.profiles.records.config import RunConfig


def check_writable_dir(path: str) -> Path:
    """Create `path` if needed and prove it is writable, or raise UsageError."""
    import tempfile
    from pathlib import Path

    d = Path(path)
    try:
        d.mkdir(parents=True, exist_ok=True)
        # an unpredictable name made with O_EXCL: a planted symlink cannot redirect the probe
        fd, probe = tempfile.mkstemp(prefix=".partui-write-test-", dir=d)
        os.close(fd)
        os.unlink(probe)
    except FileExistsError:
        raise UsageError(f"cannot write to {path}: it is a file, not a folder") from None
    except OSError as exc:
        raise UsageError(f"cannot write to {path}: {exc.strerror or exc}") from None
    return d


def check_output(text: str, flag: str, force: bool) -> Path:
    """An output file given on the command line, checked before any work is done.

    Refused (UsageError): a folder, a device, a FIFO, a socket, a symbolic link, an existing
    file without --force, a folder that cannot be written.
    """
    from pathlib import Path

    from partui.profiles.files.safe_files import WriteError, check_target

    path = Path(text).expanduser()
    try:
        check_target(path, overwrite=force)
    except WriteError as exc:
        raise UsageError(f"{flag}: {exc}") from None
    check_writable_dir(str(path.parent) if str(path.parent) else ".")
    return path


def compile_ahead(layers, kernel: str = "vectorized", strategy: str = "") -> None:
    """On first use, compile the native kernels these layers need before anything is timed,
    and say so on stderr: numba takes seconds to a minute, and a silent wait looks hung."""
    if kernel != "vectorized":
        return  # the loops kernel is plain Python
    from partui.kernels.runtime import jitcache

    layers = list(LAYERS) if strategy == "pipeline" else list(layers)
    todo = jitcache.missing(layers)
    if not todo:
        tune_ahead()
        return
    when = "first run only" if jitcache.cache_enabled() else "PARTUI_NUMBA_CACHE=0: every run"
    print(f"partui: compiling kernels, {when} ({', '.join(todo)})...", file=sys.stderr, flush=True)
    from partui.kernels.warmup import compile_kernels

    seconds = compile_kernels(todo)
    print(f"partui: kernels compiled in {seconds:.0f} s", file=sys.stderr, flush=True)
    tune_ahead()


def tune_ahead(retune: bool = False) -> dict | None:
    """On first use on this CPU (or `retune`), the short autotune of the kernels' knobs, its
    progress on stderr; later runs read the per-CPU file. None: PARTUI_AUTOTUNE=0."""
    from partui.kernels.runtime import tuning

    if not tuning.enabled():
        return None
    if not retune and tuning.read_file() is not None:
        return tuning.read_file()
    from partui.profiles.bench.autotune import ensure

    print(
        "partui: tuning the kernels for this CPU, first run only (seconds)...",
        file=sys.stderr,
        flush=True,
    )
    t0 = time.monotonic()
    data = ensure(retune, lambda text: print(f"partui: {text}", file=sys.stderr, flush=True))
    print(
        f"partui: tuned in {time.monotonic() - t0:.0f} s: {tuning.cache_path()}",
        file=sys.stderr,
        flush=True,
    )
    return data


def warn_settings(cfg: RunConfig) -> None:
    """Valid but unwise settings, on stderr: the run goes ahead (stdout stays the report)."""
    from partui.kernels.plan.strategies import settings_warnings

    for warning in settings_warnings(
        LAYERS[cfg.layer], cfg.strategy, cfg.executor, cfg.workers, cfg.batch, os.cpu_count()
    ):
        print(f"partui: warning: {warning}", file=sys.stderr)
