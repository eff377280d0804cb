"""Writing output files so that a failure never leaves half a file behind."""

from __future__ import annotations

import errno
import io
import os
import secrets
import stat
import sys
import tempfile
from pathlib import Path
from contextlib import contextmanager
from typing import BinaryIO, Callable, Iterator

from .errors import OutputError

# The table formats an output's extension may name (``--history``, ``--oof``, ``--results``, ``--shift-report``,
# ``explain -o``): in the writers' errors and the options' help alike.
TABLE_FORMATS = ".csv, .tsv, .txt (each optionally .gz, .bz2 or .xz), .parquet, or '-' for standard output"
from .interrupts import held

__all__ = ["atomic_write", "atomic_path", "write_text_atomic", "output_target", "descriptor_of", "is_special_file",
           "discard_temporaries", "check_file_name", "stdout_input", "write_whole", "WholeWrites", "write_together",
           "symlink_loop", "symlink_loop_message"]


def symlink_loop(path: str) -> bool:
    """Whether ``path`` cannot be reached because symbolic links in it lead back round (ELOOP): ``os.path.exists``
    is False for it as for a missing file, and readers said "not found" of a file that is there to see."""
    try:
        os.stat(path)
    except OSError as exc:
        return exc.errno == errno.ELOOP
    return False


def symlink_loop_message(shown: str, what: str = "file") -> str:
    """What every reader of an input path says of one that ``symlink_loop`` finds: ``shown``, the path as the
    reader names it ("model file m.mlp", "table file la.csv"), and ``what`` to give instead (the "model file")."""
    return f"{shown}: its symbolic links lead back to themselves (a loop); give the {what}'s own path"


def file_sha256(source) -> str | None:
    """sha256 hex of a regular file's bytes (None: standard input "-", a DataFrame, a directory or a device): what
    a recalibrated model records of the table it was fitted on, and ``evaluate`` compares."""
    import hashlib

    if not isinstance(source, (str, os.PathLike)) or str(source) == "-" or not os.path.isfile(source):
        return None
    digest = hashlib.sha256()
    with open(source, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_whole(stream, data) -> int:
    """Write every byte of ``data`` (bytes-like) to the binary ``stream``; their number. A raw stream (the standard
    streams under ``python -u`` or PYTHONUNBUFFERED) may take only part of a write (a file-size limit or quota
    reached in the middle, a pipe's room): the rest is written again until all is or the stream fails with an
    OSError, as a buffered stream does. A bare ``write`` returned the short count, which the callers ignored:
    ``predict -o -`` under ``ulimit -f`` left a CSV cut mid-row and exited 0."""
    view = memoryview(data).cast("B")
    done = 0
    while done < len(view):
        n = stream.write(view[done:])
        if n is None:  # a non-blocking descriptor with no room now
            raise BlockingIOError(errno.EAGAIN, "the output cannot take more now")
        if n <= 0:
            raise OSError(errno.EIO, "the output took no bytes")
        done += n
    return done


class WholeWrites(io.RawIOBase):
    """A raw binary stream whose every write is whole (``write_whole``), over ``raw`` (a FileIO): what the
    console script puts under sys.stdout and sys.stderr when Python runs unbuffered, where the text layer hands
    its bytes straight to the raw file and ignores how many it took. Closing it leaves ``raw`` open (it is the
    process's own standard stream)."""

    def __init__(self, raw):
        super().__init__()
        self.raw = raw

    def write(self, b) -> int:
        return write_whole(self.raw, b)

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.raw.fileno()

    def isatty(self) -> bool:
        return self.raw.isatty()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class _Tracked:
    """The temporary file as ``write`` sees it: remembers a failed write, so that the error is reported as
    the output's (disk full) even when the writer (pandas, pyarrow, gzip) wraps or replaces it."""

    def __init__(self, fh: BinaryIO):
        self._fh = fh
        self.failure: OSError | None = None

    def write(self, data) -> int:
        try:
            return self._fh.write(data)
        except OSError as exc:
            self.failure = exc
            raise

    def flush(self) -> None:
        try:
            self._fh.flush()
        except OSError as exc:
            self.failure = exc
            raise

    def __getattr__(self, name):  # tell, seek, fileno, closed, ...: the file's own
        return getattr(self._fh, name)


def os_reason(exc: OSError) -> str:
    """"no space left on device" from [Errno 28] ...: the system's words, lower-case, without the number."""
    text = exc.strerror or (os.strerror(exc.errno) if exc.errno else str(exc)) or type(exc).__name__
    return text[:1].lower() + text[1:]


def output_target(path: str | os.PathLike) -> Path:
    """The file that writing to ``path`` replaces: ``path`` itself, or where a symbolic link at ``path``
    points (followed to its end), so that writing through the link keeps the link."""
    path = Path(path)
    if not path.is_symlink() or is_special_file(path):
        return path  # /dev/stdout -> /proc/self/fd/1 -> "pipe:[123]": a device or pipe is opened through the link
    return Path(os.path.realpath(path))


# Names of an open file descriptor: writing to them writes into the descriptor (as the shell's `>&2` does),
# whatever it is open on, a terminal, a pipe or a log file standard error is redirected to
_DESCRIPTOR_NAMES = {"/dev/stdout": 1, "/dev/stderr": 2}
_DESCRIPTOR_DIRS = ("/dev/fd", "/proc/self/fd")


def descriptor_of(path: str | os.PathLike) -> int | None:
    """The file descriptor ``path`` names (/dev/stdout, /dev/stderr, /dev/fd/N, /proc/self/fd/N), or None."""
    name = os.path.normpath(os.fspath(path))
    if name in _DESCRIPTOR_NAMES:
        return _DESCRIPTOR_NAMES[name]
    head, tail = os.path.split(name)
    return int(tail) if head in _DESCRIPTOR_DIRS and tail.isdigit() else None


def is_special_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an existing device, named pipe or socket (links followed), or names an open file
    descriptor (``descriptor_of``): written into, never replaced (``atomic_write``)."""
    fd = descriptor_of(path)
    if fd is not None:
        try:
            os.fstat(fd)
        except OSError:
            return False
        return True
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def stdout_input(inputs: dict[str, str | os.PathLike | None]) -> str | None:
    """The name (a key of ``inputs``: option or argument -> path) of the input file that standard output is
    redirected to (``>> data.csv``, ``> model.mlp``): the same regular file, by device and inode; "-" stands for
    the file standard input is redirected from. None when standard output is no regular file (a terminal, a
    pipe, /dev/null) or none of them. A command's tables or rows written there went into the input it read,
    appended to a data table or a model file (``>``: the shell had emptied it before the command started)."""
    try:
        out = os.fstat(1)
    except OSError:
        return None
    if not stat.S_ISREG(out.st_mode):
        return None
    for name, path in inputs.items():
        if path is None:
            continue
        try:
            st = os.fstat(0) if os.fspath(path) == "-" else os.stat(path)
        except (OSError, ValueError, TypeError):
            continue
        if stat.S_ISREG(st.st_mode) and (st.st_dev, st.st_ino) == (out.st_dev, out.st_ino):
            return name
    return None


def check_file_name(path: str | os.PathLike) -> None:
    """An OutputError when ``path`` cannot name a file to write: a name ending in a path separator (``sub/``)
    names a directory, yet ``pathlib`` drops the separator, so ``-o sub/`` wrote a file named ``sub``."""
    shown = os.fspath(path)
    if isinstance(shown, bytes):
        shown = os.fsdecode(shown)
    if shown.endswith(tuple(s for s in (os.sep, os.altsep) if s)):
        if os.path.isdir(shown):
            raise OutputError(f"cannot write {shown}: it is a directory; give a file name")
        raise OutputError(f"cannot write {shown}: a name ending in {shown[-1]!r} names a directory, and {shown} does "
                          "not exist; give a file name")


def _destination(path: str | os.PathLike):
    """(the path as shown, the file written (a link's target), its directory, its stat or None, the
    permission bits the new file gets): an OutputError for a directory (or a name ending in a separator,
    ``check_file_name``) or an unreadable destination."""
    check_file_name(path)
    shown = os.fspath(path)
    target = output_target(path)
    directory = target.parent if str(target.parent) else Path(".")
    try:
        st = os.stat(target)
        mode = stat.S_IMODE(st.st_mode)
    except FileNotFoundError:
        st, mode = None, 0o666 & ~_umask()
    except OSError as exc:
        raise _output_error(shown, exc) from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise OutputError(f"cannot write {shown}: it is a directory")
    return shown, target, directory, st, mode


# The temporary files being written now, removed by ``discard_temporaries`` when the process must end at once.
_TEMPORARIES: set[str] = set()


def _temporary(target: Path, directory: Path, shown: str) -> tuple[int, str]:
    """A new temporary file beside ``target``: (its descriptor, its name), known to ``discard_temporaries``. A
    stop signal while it is being created is raised once its name is known (``interrupts.held``), and the file
    removed."""
    tmp = None
    try:
        with held():
            try:
                fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(target), suffix=".tmp", dir=directory)
            except OSError as exc:
                raise _output_error(shown, exc) from None
            _TEMPORARIES.add(tmp)
    except BaseException:
        if tmp is not None:  # the signal held back while the file was created, raised now that it has a name
            os.close(fd)
            _discard(tmp)
        raise
    return fd, tmp


# A file being written is first created without a name (Linux's O_TMPFILE) where the file system allows it, and
# named only once it is whole: a process killed outright while writing (SIGKILL from the OOM killer or from SLURM
# after its grace period, OpenBLAS calling exit() when an allocation fails under ulimit -v) leaves nothing behind,
# where a named temporary file would stay as a hidden ``.NAME.<8 random characters>.tmp``. Elsewhere (NFS, macOS), or with
# this set False, a named temporary file as before, removed on every error and stop signal Python sees.
UNNAMED_TEMPORARIES = True
_NO_UNNAMED = {errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOSYS, errno.EXDEV}


def _unnamed_temporary(directory: Path, shown: str) -> int | None:
    """A descriptor of a new, nameless file in ``directory`` (O_TMPFILE), or None where there is none to be
    had (no O_TMPFILE, no /proc to name it by, a file system without it)."""
    flag = getattr(os, "O_TMPFILE", None)
    if not UNNAMED_TEMPORARIES or flag is None or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        return os.open(directory, flag | os.O_RDWR | os.O_CLOEXEC, 0o600)  # (read back if it cannot be named)
    except OSError as exc:
        if exc.errno in _NO_UNNAMED:
            return None
        raise _output_error(shown, exc) from None


def _named(fd: int, target: Path, directory: Path, shown: str) -> str:
    """Give the nameless file ``fd`` a temporary name beside ``target`` (known to ``discard_temporaries``) and
    return it; a stop signal meanwhile is raised once the name is known (``interrupts.held``). Where the link
    is refused (a /proc that does not allow it), the content is copied into a named temporary file, and later
    files are written named from the start."""
    global UNNAMED_TEMPORARIES
    with held():
        where = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            for _ in range(100):
                name = f"{_temp_prefix(target)}{secrets.token_hex(4)}.tmp"
                try:  # linkat(AT_SYMLINK_FOLLOW); a directory descriptor makes os.link call linkat, not link(),
                    # which would link the /proc entry itself (a cross-device link, refused)
                    os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=where, follow_symlinks=True)
                except FileExistsError:
                    continue
                except OSError:
                    break
                tmp = os.path.join(directory, name)
                _TEMPORARIES.add(tmp)
                return tmp
        finally:
            os.close(where)
    UNNAMED_TEMPORARIES = False
    copy, tmp = _temporary(target, directory, shown)
    with os.fdopen(copy, "wb") as out:
        os.lseek(fd, 0, os.SEEK_SET)
        while block := os.read(fd, 1 << 20):
            out.write(block)
        out.flush()
        os.fsync(out.fileno())
    return tmp


def discard_temporaries() -> None:
    """Remove every temporary file still being written (for a process that ends at once, ``os._exit``)."""
    for tmp in list(_TEMPORARIES):
        _discard(tmp)


def _into_place(tmp: str, mode: int, target: Path) -> None:
    os.chmod(tmp, mode)  # mkstemp makes 0600
    os.replace(tmp, target)
    _TEMPORARIES.discard(tmp)


def _discard(tmp: str) -> None:
    try:
        os.unlink(tmp)
    except OSError:
        pass
    _TEMPORARIES.discard(tmp)


# A file name's limit on the usual file systems (ext4, XFS, NFS), in bytes; a temporary name adds a dot,
# a dot, mkstemp's 8 random characters and ".tmp".
NAME_MAX = 255
_TEMP_EXTRA = 14


def _temp_prefix(target: Path) -> str:
    """".NAME." for the temporary file beside ``target``, NAME cut (at a character boundary) so that the
    temporary name fits in NAME_MAX bytes whenever the target's own name does. The name's bytes are the file
    system's (``os.fsencode``): read as UTF-8 whatever the file system encoding, a name such as ``p_é.csv``
    under an ASCII one (LC_ALL=C with Python's UTF-8 mode off) became a character the file system could not
    encode, and the command failed as it wrote its output, its work done."""
    raw = os.fsencode(target.name)
    limit = NAME_MAX - _TEMP_EXTRA
    if len(raw) > limit:
        raw = raw[:limit]
        lead = len(raw) - 1  # a UTF-8 character cut in two at the limit: its first bytes go too
        while lead > 0 and len(raw) - lead < 4 and raw[lead] & 0xC0 == 0x80:
            lead -= 1
        if raw[lead] >= 0xC0 and len(raw) - lead < (2 if raw[lead] < 0xE0 else 3 if raw[lead] < 0xF0 else 4):
            raw = raw[:lead]
    return f".{os.fsdecode(raw)}."


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object], readable: bool = False) -> None:
    """Write through ``write(fileobj)`` to a temporary file beside ``path``, then rename it into
    place; on any error (or Ctrl-C) the temporary file is removed and ``path`` is untouched.

    Replacing an existing file keeps its permission bits (a 0600 model stays 0600); a new file gets the
    usual 0666 less the umask. A symbolic link is written through: its target is replaced (atomically, in
    the target's directory) and the link stays. A failure of the file system (disk full, quota, read-only,
    permissions) is an OutputError "cannot write PATH: no space left on device". A device or named pipe
    (``-o /dev/null``, ``/dev/stdout``) is written into directly, never replaced; so is an open descriptor's
    name (``/dev/stderr`` with standard error redirected to a log file: written on at the log's end).

    ``readable``: ``write`` gets a file it can also read and seek in (HDF5's writer, through h5py's file-object
    driver), so the output can be made in a nameless file too; a destination that is not a regular file is then
    an OutputError."""
    check_file_name(path)  # before descriptor_of, whose normpath reads /dev/stderr/ as /dev/stderr
    fd = descriptor_of(path)
    if fd is not None and readable:
        raise OutputError(f"cannot write {_STANDARD_STREAMS.get(fd, os.fspath(path))}: not a regular file (this "
                          "format needs a file it can seek in)")
    if fd is not None:  # named as the user knows it: `-o -` is standard output, not /dev/stdout
        _write_descriptor(_STANDARD_STREAMS.get(fd, os.fspath(path)), fd, write)
        return
    shown, target, directory, st, mode = _destination(path)
    if st is not None and not stat.S_ISREG(st.st_mode):
        if readable:
            raise OutputError(f"cannot write {shown}: not a regular file (this format needs a file it can seek in)")
        _write_special(shown, target, write)  # /dev/null, /dev/stdout, a named pipe: never replaced
        return
    tmp, tracked, finishing, created = None, None, False, False
    try:
        fd = _unnamed_temporary(directory, shown)
        if fd is None:
            fd, tmp = _temporary(target, directory, shown)
        created = True
        with os.fdopen(fd, "w+b" if readable else "wb") as fh:
            tracked = _Tracked(fh)
            write(tracked)
            finishing = True  # from here every OSError is the output's
            tracked.flush()
            os.fsync(fh.fileno())  # a full disk or quota shows here on NFS, not at rename time
            if tmp is None:  # whole now: named (the descriptor still open) to be renamed into place
                tmp = _named(fh.fileno(), target, directory, shown)
        _into_place(tmp, mode, target)
    except BaseException as exc:
        if not created:  # not created (an OutputError naming the output), or a stop signal before it was
            raise
        if tmp is not None:  # (a nameless file vanishes with its descriptor)
            _discard(tmp)
        failure = tracked.failure if tracked is not None else None
        if failure is None and isinstance(exc, OSError) and not isinstance(exc, OutputError) and (
                finishing or exc.errno in _FULL_ERRNOS):
            failure = exc
        if failure is not None:
            raise _output_error(shown, failure) from None
        raise


# A file system that refuses more data; raised inside ``write`` by a writer that bypasses the tracked
# file object (errors of the writer's input, such as a damaged table being streamed, pass unchanged).
_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS}


def _write_special(shown: str, target: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write straight into a device or named pipe (renaming a file over it would replace the device)."""
    _write_into(shown, lambda: open(target, "wb"), write)


_STANDARD_STREAMS = {0: "standard input", 1: "standard output", 2: "standard error"}


def _write_descriptor(shown: str, fd: int, write: Callable[[BinaryIO], object]) -> None:
    """Write into the open descriptor ``fd`` (a copy of it, closed after): at its current position, nothing
    truncated, as ``>&2`` does; opening its name anew would truncate a log file it is open on. What Python
    holds buffered for standard output or error goes first, so the two keep their order."""
    for stream in (sys.stdout, sys.stderr):
        if stream is not None and _fileno(stream) == fd:
            stream.flush()
    _write_into(shown, lambda: os.fdopen(os.dup(fd), "wb"), write)


def _fileno(stream) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by a StringIO (tests), closed
        return None


def _write_into(shown: str, opened: Callable[[], BinaryIO], write: Callable[[BinaryIO], object]) -> None:
    """Write into the file ``opened()`` gives, in place; a failure of the file system is an OutputError. A
    reader that has gone (``train -o - | head -c 100``, a named pipe closed) stays a BrokenPipeError: the
    command ends as every writer to a closed pipe does (exit 141), not with an error."""
    tracked = None
    try:
        with opened() as fh:
            tracked = _Tracked(fh)
            write(tracked)
            tracked.flush()
    except OSError as exc:
        failure = tracked.failure if tracked is not None and tracked.failure is not None else exc
        if isinstance(failure, BrokenPipeError):
            raise failure from None
        if isinstance(failure, OutputError):
            raise
        raise _output_error(shown, failure) from None


def _output_error(shown: str, exc: OSError) -> OutputError:
    err = OutputError(f"cannot write {shown}: {os_reason(exc)}")
    err.errno = exc.errno
    return err


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    atomic_write(path, lambda fh: fh.write(text.encode()))


def write_together(files: dict[str, bytes], last=None) -> None:
    """Write the files (path: content) and run ``last`` (an output with a writer of its own: a plot, an .h5ad
    copy), all or none: each file goes to a temporary file beside it, on disk (fsync) before the next is
    started, and the temporaries are renamed into place only once ``last`` has succeeded, innermost first. An
    error in any output so leaves no new file behind, and every file an earlier run left where it was. Devices
    and open descriptors (/dev/null, /dev/stderr), which cannot be taken back, are written last before ``last``."""
    regular = [(path, content) for path, content in files.items() if not is_special_file(path)]
    special = [(path, content) for path, content in files.items() if is_special_file(path)]

    class _Last(Exception):  # carries an error of ``last`` past the files' writers, which would take a
        pass                 # full disk's OSError for their own

    def from_(i: int) -> None:
        if i == len(regular):
            for path, content in special:  # before anything is put in place: a failure (/dev/full) leaves nothing
                atomic_write(path, lambda fh, content=content: fh.write(content))
            if last is not None:
                try:
                    last()
                except OSError as exc:
                    raise _Last(exc) from None
            return
        path, content = regular[i]

        def write(fh) -> None:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())  # a full disk (NFS, quota) shows now, while nothing is in place yet
            from_(i + 1)

        atomic_write(path, write)

    try:
        from_(0)
    except _Last as wrapped:
        raise wrapped.args[0] from None


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """A temporary file's path beside ``path`` (its target, for a symbolic link) for a writer that needs a
    path rather than a file object; renamed into place when the block ends, removed on any error, Ctrl-C or
    SIGTERM, so ``path`` is never left half-written. Permissions as ``atomic_write`` gives them; a failure of
    the file system is an OutputError naming ``path``. The file is named from the start, so a process killed
    outright (SIGKILL) leaves it: ``atomic_write(..., readable=True)`` does not, for a writer that can take a
    file object (h5py can)."""
    shown, target, directory, st, mode = _destination(path)
    if descriptor_of(path) is not None or st is not None and not stat.S_ISREG(st.st_mode):
        raise OutputError(f"cannot write {shown}: not a regular file (this format needs a file it can seek in)")
    tmp = None
    try:
        fd, tmp = _temporary(target, directory, shown)
        os.close(fd)
        yield tmp
        _into_place(tmp, mode, target)
    except BaseException as exc:
        if tmp is None:
            raise
        _discard(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, OutputError) and exc.errno in _FULL_ERRNOS | {errno.EACCES}:
            raise _output_error(shown, exc) from None
        raise
