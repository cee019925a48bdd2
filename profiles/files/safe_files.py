"""The one way partui writes a file: atomically, and never onto anything but a regular file.

Every file partui writes (snapshots, exports, the baseline book, arrays) goes through
`write_bytes` / `write_text`:

- a target that exists and is not a regular file (a device, a FIFO, a socket, a folder, a
  symbolic link) is refused: writing there would replace it, or write through it;
- the data goes to a temporary file made with O_CREAT | O_EXCL | O_NOFOLLOW under an
  unpredictable name in the target's folder (so a planted symlink cannot catch it), is
  flushed, then moved onto the target in one step; on any failure the temporary file is
  removed;
- an existing file is replaced only when the caller says so (`overwrite=True`): without it
  the move is a hard link, which fails if the name was taken meanwhile, so two processes
  saving at once never lose one file; `unique=True` then tries name-2, name-3, ...;
- permissions follow the umask (0666 & ~umask), like any file a user makes.

Failures raise WriteError (an OSError) with a one-line message naming the path.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path

MAX_UNIQUE_TRIES = 1000


class WriteError(OSError):
    """A file partui refuses to write, or could not write; the message is one line."""

    def __str__(self) -> str:
        return self.args[0] if self.args else "cannot write"


def refuse_reason(path) -> str | None:
    """Why `path` must not be written to (None: absent, or a regular file)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot check it: {exc.strerror or exc}"
    if stat.S_ISLNK(st.st_mode):
        return "it is a symbolic link (partui does not write through links)"
    if stat.S_ISDIR(st.st_mode):
        return "it is a folder; give a file name"
    if not stat.S_ISREG(st.st_mode):
        kind = (
            "a character device"
            if stat.S_ISCHR(st.st_mode)
            else "a block device"
            if stat.S_ISBLK(st.st_mode)
            else "a FIFO"
            if stat.S_ISFIFO(st.st_mode)
            else "a socket"
            if stat.S_ISSOCK(st.st_mode)
            else "a special file"
        )
        return f"it is {kind}, not a regular file"
    return None


def check_target(path, overwrite: bool = False) -> Path:
    """Refuse early (before any work) a target that write_bytes would refuse later."""
    path = Path(path)
    reason = refuse_reason(path)
    if reason:
        raise WriteError(f"will not write {path}: {reason}")
    if not overwrite and os.path.lexists(path):
        raise WriteError(f"will not replace {path}: it exists (use --force to replace it)")
    return path


def _numbered(path: Path, n: int) -> Path:
    if n == 1:
        return path
    name = path.name
    for suffix in (".json.weights.npz", ".trace.json", ".json", ".csv", ".npy", ".npz", ".svg"):
        if name.endswith(suffix):
            return path.with_name(f"{name[: -len(suffix)]}-{n}{suffix}")
    return path.with_name(f"{name}-{n}")


def _fail(path, what: str, exc: OSError) -> WriteError:
    return WriteError(f"cannot {what} {path}: {exc.strerror or exc}")


def write_bytes(
    path, data: bytes | Iterable[bytes], *, overwrite: bool = False, unique: bool = False
) -> Path:
    """Write `data` (bytes, or chunks of them made as they are written) to `path`
    atomically; returns the path written (see the module notes).

    `unique`: if the name is taken, use name-2, name-3, ... (a default name), never replace.
    """
    path = Path(path)
    if unique:
        overwrite = False
    else:
        reason = refuse_reason(path)  # before any work; checked again at the move
        if reason:
            raise WriteError(f"will not write {path}: {reason}")
    folder = path.parent if str(path.parent) else Path(".")
    try:
        dir_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise _fail(path, "write", exc) from None
    try:
        placed = False  # the temporary file was renamed into place
        tmp = f".{path.name[:80]}.{secrets.token_hex(8)}.tmp"
        try:
            fd = os.open(
                tmp,
                os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o666,
                dir_fd=dir_fd,
            )
        except OSError as exc:
            raise _fail(path, "write", exc) from None
        try:
            try:
                with os.fdopen(fd, "wb") as f:
                    if isinstance(data, (bytes, bytearray, memoryview)):
                        f.write(data)
                    else:
                        for chunk in data:
                            f.write(chunk)
                    f.flush()
                    os.fsync(f.fileno())
            except OSError as exc:
                raise _fail(path, "write", exc) from None
            for n in range(1, (MAX_UNIQUE_TRIES if unique else 1) + 1):
                target = _numbered(path, n)
                reason = refuse_reason(target)
                if reason and not (unique and os.path.lexists(target)):
                    raise WriteError(f"will not write {target}: {reason}")
                if overwrite:
                    try:
                        os.rename(tmp, target.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
                    except OSError as exc:
                        raise _fail(target, "write", exc) from None
                    placed = True
                    return target
                try:
                    # a link fails if the name exists: no other writer's file is replaced
                    os.link(
                        tmp,
                        target.name,
                        src_dir_fd=dir_fd,
                        dst_dir_fd=dir_fd,
                        follow_symlinks=False,
                    )
                    return target
                except FileExistsError:
                    if not unique:
                        raise WriteError(
                            f"will not replace {target}: it exists (use --force to replace it)"
                        ) from None
                except OSError as exc:
                    if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
                        raise _fail(target, "write", exc) from None
                    # no hard links here (some network and FAT file systems): check, then move
                    if os.path.lexists(target):
                        if unique:
                            continue
                        raise WriteError(
                            f"will not replace {target}: it exists (use --force to replace it)"
                        ) from None
                    try:
                        os.rename(tmp, target.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
                    except OSError as exc2:
                        raise _fail(target, "write", exc2) from None
                    placed = True
                    return target
            raise WriteError(
                f"will not write {path}: {MAX_UNIQUE_TRIES} files of that name exist already"
            )
        finally:
            if not placed:
                try:
                    os.unlink(tmp, dir_fd=dir_fd)
                except OSError:
                    pass
    finally:
        os.close(dir_fd)


def write_text(
    path, text: str | Iterable[str], *, overwrite: bool = False, unique: bool = False
) -> Path:
    """write_bytes of `text` (a string, or pieces of one made as they are written) in UTF-8."""
    data = (
        text.encode("utf-8") if isinstance(text, str) else (piece.encode("utf-8") for piece in text)
    )
    return write_bytes(path, data, overwrite=overwrite, unique=unique)


def read_limited(path, max_bytes: int, what: str = "file") -> bytes:
    """A regular file's bytes, refusing devices/FIFOs (they may never end) and big files.

    Raises OSError subclasses with errno set for absent files and folders, ValueError with a
    one-line message for the rest.
    """
    path = Path(path)
    # O_NONBLOCK: opening a FIFO with no writer must not hang before fstat can refuse it
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a folder", str(path))
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(
                f"{path}: not a regular file (a device, FIFO or socket); not a partui {what}"
            )
        if st.st_size > max_bytes:
            raise ValueError(
                f"{path}: {st.st_size / 2**20:.1f} MiB, more than the "
                f"{max_bytes / 2**20:.0f} MiB a partui {what} may have"
            )
        os.set_blocking(fd, True)
        chunks, total = [], 0
        while True:  # read to the cap even if the file grows meanwhile
            chunk = os.read(fd, min(1 << 20, max_bytes + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > max_bytes:
                raise ValueError(
                    f"{path}: more than the {max_bytes / 2**20:.0f} MiB a partui {what} may have"
                )
        return b"".join(chunks)
    finally:
        os.close(fd)
