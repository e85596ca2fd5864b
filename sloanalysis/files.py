"""Writing outputs safely: the one place that creates, replaces and cleans up output files.

Every writer goes through here, so the rules hold everywhere:

* A file is written to an unpredictable temporary name beside it (``mkstemp``: ``O_EXCL``, no
  symlink following), flushed to disk and renamed over the target. A target that exists and is
  not a regular file (a device, a fifo, a directory) is refused; a symlink at the target is
  replaced as a link, never followed.
* A directory output replaces only a directory its command made (it carries the command's
  marker file), an empty one, or none. Its content is built in a temporary sibling that is
  swapped in whole, so there is never a moment without a complete output.
* An output never is, contains or lies inside one of the command's inputs.
* Temporary names carry the writer's process id (``.NAME.PID.XXXXXXXX.tmp``): a later writer
  removes those whose process is gone (killed), and leaves those of live processes alone.
* New files and directories get the permissions the umask allows (0644/0755 under umask 022),
  so another account (Prometheus backfilling a run) can read them.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fnmatch
import os
import re
import secrets
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Collection, Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from sloanalysis.errors import UserError

__all__ = [
    "StagedDirectory",
    "atomic_open",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_with",
    "claim_directory",
    "fresh_directory",
    "output_directory",
    "read_input_text",
    "refuse_overlap",
    "remove_stale_temps",
]

PathLike = str | os.PathLike[str]

_SUFFIX = ".tmp"
_NAME_MAX = 160  # room for ".PID.XXXXXXXX.tmp" within the usual 255-byte limit
# mkstemp/mkdtemp draw 8 characters from this alphabet.
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[a-z0-9_]{8}\.tmp$")


# -- reading -----------------------------------------------------------------------------------


def read_input_text(path: PathLike, error: type[UserError] = UserError) -> str:
    """The UTF-8 text of an input file, or ``error`` with one line naming the file and the reason."""
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{p}: cannot read: no such file") from None
    except OSError as exc:
        raise error(f"{p}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise error(f"{p}: not UTF-8 text: {exc.reason}") from None


# -- checks ------------------------------------------------------------------------------------


def refuse_overlap(output: PathLike, inputs: Iterable[PathLike | None], *, what: str = "--out") -> None:
    """Raise if ``output`` is one of ``inputs``, contains one, or lies inside one."""
    out = Path(output).resolve()
    for item in inputs:
        if item is None:
            continue
        src = Path(item).resolve()
        if out == src:
            raise UserError(f"{what} {output}: is the input {item}; refusing to overwrite an input")
        if out in src.parents:
            raise UserError(f"{what} {output}: contains the input {item}; refusing to replace it")
        if src in out.parents:
            raise UserError(f"{what} {output}: lies inside the input {item}; choose a path outside it")


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a fifo"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISLNK, "a symbolic link"),
    ):
        if test(mode):
            return name
    return "a special file"


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise UserError(f"{path}: cannot inspect: {exc.strerror or exc}") from None


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (threads may be writing)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# -- temporary siblings --------------------------------------------------------------------------


def _temp_prefix(target: Path) -> str:
    return f".{target.name[:_NAME_MAX]}.{os.getpid()}."


def _process_gone(pid: int) -> bool:
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # EPERM: alive, someone else's
        return False
    return False


def remove_stale_temps(directory: PathLike, name: str | None = None) -> list[Path]:
    """Remove temporary files/directories of this module's naming whose writer process is gone.

    ``name`` limits it to the temporaries of one target (in a shared parent directory); without
    it every stale temporary in ``directory`` goes (for directories the caller owns). Entries
    of other users or live processes are left alone. Returns what was removed.
    """
    removed: list[Path] = []
    want = None if name is None else name[:_NAME_MAX]
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return removed
    uid = os.geteuid()
    for entry in entries:
        m = _TEMP_RE.match(entry.name)
        if m is None or (want is not None and m["name"] != want) or not _process_gone(int(m["pid"])):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if info.st_uid != uid:
                continue
            if stat.S_ISDIR(info.st_mode):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            continue  # another writer got there first, or it is not ours to remove
    return removed


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# -- files ---------------------------------------------------------------------------------------


def _file_target(
    path: PathLike, inputs: Iterable[PathLike | None], mode: int | None = None
) -> tuple[Path, int]:
    """The target and the mode its replacement gets; refuses special files and inputs."""
    target = Path(path)
    refuse_overlap(target, inputs)
    info = _lstat(target)
    if mode is not None and (info is None or stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode)):
        return target, mode
    if info is None or stat.S_ISLNK(info.st_mode):
        return target, 0o666 & ~_umask()
    if not stat.S_ISREG(info.st_mode):
        raise UserError(
            f"{target}: exists and is {_kind(info.st_mode)}, not a regular file; refusing to replace it"
        )
    return target, stat.S_IMODE(info.st_mode)  # keep the permissions someone gave the file


@contextlib.contextmanager
def _temp_file(
    path: PathLike, inputs: Iterable[PathLike | None], mode: int | None = None
) -> Iterator[tuple[int, Path]]:
    """An open, empty temporary sibling of ``path``; renamed over it when the body succeeds."""
    target, mode = _file_target(path, inputs, mode)
    parent = target.absolute().parent
    remove_stale_temps(parent, target.name)
    try:
        fd, name = tempfile.mkstemp(prefix=_temp_prefix(target), suffix=_SUFFIX, dir=parent)
    except OSError as exc:
        raise UserError(f"{target}: cannot write: {exc.strerror or exc}") from None
    tmp = Path(name)
    try:
        os.fchmod(fd, mode)
        yield fd, tmp
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, target)
        _fsync_dir(parent)
    except OSError as exc:
        raise UserError(f"{target}: cannot write: {exc.strerror or exc}") from None
    finally:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def atomic_write_bytes(
    path: PathLike, data: bytes, *, inputs: Iterable[PathLike | None] = (), mode: int | None = None
) -> Path:
    """Replace ``path`` with ``data`` atomically (see the module docstring).

    ``mode``: permissions for the new file (0o600 for secrets) instead of the umask's or the
    replaced file's; the file never has wider ones, not even while it is written.
    """
    with _temp_file(path, inputs, mode) as (fd, _):
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    return Path(path)


def atomic_write_text(
    path: PathLike,
    text: str,
    *,
    encoding: str = "utf-8",
    inputs: Iterable[PathLike | None] = (),
    mode: int | None = None,
) -> Path:
    """Replace ``path`` with ``text`` atomically (see :func:`atomic_write_bytes`)."""
    return atomic_write_bytes(path, text.encode(encoding), inputs=inputs, mode=mode)


@contextlib.contextmanager
def atomic_open(
    path: PathLike,
    mode: str = "w",
    *,
    encoding: str | None = "utf-8",
    newline: str | None = None,
    inputs: Iterable[PathLike | None] = (),
) -> Iterator[IO[Any]]:
    """A file object for streaming writes; ``path`` is replaced only when the block succeeds."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open: mode must be 'w' or 'wb', got {mode!r}")
    with _temp_file(path, inputs) as (fd, _):
        if mode == "wb":
            fh: IO[Any] = os.fdopen(os.dup(fd), "wb")
        else:
            fh = os.fdopen(os.dup(fd), "w", encoding=encoding, newline=newline)
        with fh:
            yield fh


def atomic_write_with(
    path: PathLike, write: Callable[[Path], object], *, inputs: Iterable[PathLike | None] = ()
) -> Path:
    """Replace ``path`` with what ``write(tmp)`` writes to a temporary path (Parquet, PNG writers).

    The temporary file already exists (created exclusively, so nobody can plant a link there);
    ``write`` opens it by name and overwrites it.
    """
    with _temp_file(path, inputs) as (_, tmp):
        write(tmp)
    return Path(path)


# -- directories ---------------------------------------------------------------------------------


def _check_directory(path: PathLike, marker: str, legacy: Collection[str], what: str) -> None:
    """Raise unless ``path`` is missing, empty, marked, or an earlier version's output."""
    target = Path(path)  # as the user wrote it, for messages
    info = _lstat(Path(os.path.abspath(path)))  # without a trailing "/" that would follow a link
    if info is None:
        return
    if stat.S_ISLNK(info.st_mode):
        raise UserError(f"{target}: is a symbolic link; give the {what} itself")
    if not stat.S_ISDIR(info.st_mode):
        raise UserError(
            f"{target}: exists and is {_kind(info.st_mode)}, not a {what}; refusing to replace it"
        )
    try:
        names = os.listdir(os.path.abspath(path))
    except OSError as exc:
        raise UserError(f"{target}: cannot read: {exc.strerror or exc}") from None
    if not names or marker in names:
        return
    if legacy and all(any(fnmatch.fnmatchcase(n, p) for p in legacy) for n in names):
        return  # written by an earlier version, before the marker existed
    raise UserError(
        f"{target}: exists and is not a {what} (no {marker} file); refusing to replace it, "
        "remove it or choose another path"
    )


def _write_marker(directory: Path, marker: str, what: str) -> None:
    text = f"{what}: the command that wrote this directory may replace it.\n"
    with open(directory / marker, "w", encoding="utf-8") as fh:
        fh.write(text)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # glibc < 2.28 or another libc
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # the filesystem cannot exchange
        return False
    raise OSError(err, os.strerror(err), str(b))


def _swap_in(new: Path, target: Path) -> Path | None:
    """Put the directory ``new`` at ``target``; returns where the old content went (to delete)."""
    try:
        os.rename(new, target)  # no target, or an empty directory: replaced in one step
        return None
    except OSError as exc:
        if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
            raise
    if _exchange(new, target):
        return new
    # No atomic exchange here: move the old directory aside, then the new one in. The gap between
    # the two renames is as short as it gets, and a kill inside it leaves both under names that
    # a rerun recognises (the old one as a stale temporary, removed).
    trash = target.with_name(f"{_temp_prefix(target)}{secrets.token_hex(4)}{_SUFFIX}")
    os.rename(target, trash)
    try:
        os.rename(new, target)
    except OSError:
        os.rename(trash, target)
        raise
    return trash


class StagedDirectory:
    """A directory output under construction in a temporary sibling of its target.

    Fill :attr:`path`, then :meth:`commit` (swap it in whole) or :meth:`discard`. For code that
    cannot wrap its work in :func:`output_directory`'s ``with`` block. ``path`` may be missing,
    empty, carry ``marker`` (the command wrote it before), or hold only names matching the
    ``legacy`` patterns (an earlier version's output); anything else, a symlink, or an overlap
    with ``inputs`` is refused here, before any work is done. Stale temporaries of killed
    earlier runs beside the target are removed.
    """

    def __init__(
        self,
        path: PathLike,
        marker: str,
        *,
        inputs: Iterable[PathLike | None] = (),
        legacy: Collection[str] = (),
        what: str = "output directory",
    ) -> None:
        self.shown = Path(path)  # as the user wrote it, for messages
        self.target = Path(os.path.abspath(path))  # "." or "runs/x/" name the directory itself
        self.marker, self.legacy, self.what = marker, legacy, what
        refuse_overlap(self.shown, inputs)
        _check_directory(self.shown, marker, legacy, what)
        parent = self.target.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            remove_stale_temps(parent, self.target.name)
            self.path = Path(tempfile.mkdtemp(prefix=_temp_prefix(self.target), suffix=_SUFFIX, dir=parent))
            self.path.chmod(0o777 & ~_umask())  # mkdtemp's 0700 would outlive the rename
        except OSError as exc:
            raise UserError(f"{self.shown}: cannot write the {what}: {exc.strerror or exc}") from None

    def commit(self) -> Path:
        """Write the marker and swap the finished directory in; the old content is deleted."""
        try:
            _write_marker(self.path, self.marker, self.what)
            _check_directory(self.shown, self.marker, self.legacy, self.what)  # changed meanwhile?
            old = _swap_in(self.path, self.target)
            _fsync_dir(self.target.parent)
        except OSError as exc:
            self.discard()
            raise UserError(f"{self.shown}: cannot write the {self.what}: {exc.strerror or exc}") from None
        except BaseException:
            self.discard()
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.shown

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


@contextlib.contextmanager
def output_directory(
    path: PathLike,
    marker: str,
    *,
    inputs: Iterable[PathLike | None] = (),
    legacy: Collection[str] = (),
    what: str = "output directory",
) -> Iterator[Path]:
    """Build a directory output in the yielded temporary directory; it replaces ``path`` when the
    block succeeds and is deleted when it fails. The rules are :class:`StagedDirectory`'s."""
    staged = StagedDirectory(path, marker, inputs=inputs, legacy=legacy, what=what)
    try:
        yield staged.path
    except OSError as exc:
        staged.discard()
        raise UserError(f"{staged.shown}: cannot write the {what}: {exc.strerror or exc}") from None
    except BaseException:
        staged.discard()
        raise
    staged.commit()


def claim_directory(
    path: PathLike,
    marker: str,
    *,
    inputs: Iterable[PathLike | None] = (),
    legacy: Collection[str] = (),
    what: str = "output directory",
) -> Path:
    """Create or reuse ``path`` for a command that adds to it over several runs (capacity sweeps).

    The same rules as :func:`output_directory` decide whether ``path`` may be used; the marker
    is written into it, and stale temporaries of killed earlier runs inside it are removed.
    """
    target = Path(path)
    refuse_overlap(target, inputs)
    _check_directory(target, marker, legacy, what)
    try:
        target.mkdir(parents=True, exist_ok=True)
        if not (target / marker).is_file():
            _write_marker(target, marker, what)
    except OSError as exc:
        raise UserError(f"{target}: cannot create the {what}: {exc.strerror or exc}") from None
    remove_stale_temps(target)
    return target


def fresh_directory(
    path: PathLike,
    marker: str,
    *,
    inputs: Iterable[PathLike | None] = (),
    legacy: Collection[str] = (),
    what: str = "work directory",
) -> Path:
    """Empty ``path`` for a command's scratch output (logs, a TSDB) and mark it.

    Only what :func:`output_directory` would replace is emptied: a missing or empty directory,
    one carrying ``marker``, or one holding only ``legacy`` names. Anything else is refused.
    """
    target = Path(path)
    refuse_overlap(target, inputs)
    _check_directory(target, marker, legacy, what)
    try:
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        _write_marker(target, marker, what)
    except OSError as exc:
        raise UserError(f"{target}: cannot prepare the {what}: {exc.strerror or exc}") from None
    return target
