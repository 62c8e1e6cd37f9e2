"""Run directories: created by the supervisor, read back without ever following a symlink.

Layout (mode 0700, owned by the slot uid):  run-XXXX/{task.py, tmp/, work/{<input>, output/}}
The task's cwd is work/, which holds only the input and an empty output/.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import secrets
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .models import OutputFile

logger = logging.getLogger(__name__)

MAX_OUTPUT_FILES = 20
MAX_OUTPUT_DEPTH = 8
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def safe_input_name(name: str | None, fallback: str = "input") -> str:
    """A plain file name for the input copy: no directories, no hidden or reserved names."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip().lstrip(".")
    if not base or base == "output":
        return fallback
    while len(base.encode("utf-8", "surrogateescape")) > 200:
        base = base[:-1]
    return base


@dataclass(frozen=True)
class RunDir:
    host_path: Path  # as the supervisor sees it (possibly through /proc/<zygote>/root)
    path: str  # as the zygote and the child see it
    input_name: str | None

    def wire(self) -> dict[str, str | None]:
        work = f"{self.path}/work"
        return {
            "run_dir": self.path,
            "work_dir": work,
            "tmp_dir": f"{self.path}/tmp",
            "code_path": f"{self.path}/task.py",
            "input_path": f"{work}/{self.input_name}" if self.input_name else None,
        }


def create_run_dir(
    *,
    host_slot_dir: Path,
    slot_dir: str,
    code: str,
    input_path: Path | None,
    input_name: str | None,
    owner: tuple[int, int] | None,
    max_input_bytes: int,
    input_data: bytes | None = None,
) -> RunDir:
    name = f"run-{secrets.token_hex(8)}"
    host_path = host_slot_dir / name
    os.mkdir(host_path, 0o700)
    try:
        root = os.open(host_path, _DIR_FLAGS)
        try:
            _populate(
                root,
                code,
                input_path=input_path,
                input_data=input_data,
                input_name=input_name,
                owner=owner,
                max_input_bytes=max_input_bytes,
            )
        finally:
            os.close(root)
    except BaseException:
        remove_run_dir(host_path)
        raise
    copied = safe_input_name(input_name or (input_path.name if input_path else None))
    given = input_path is not None or input_data is not None
    return RunDir(host_path, f"{slot_dir}/{name}", copied if given else None)


def _populate(
    root: int,
    code: str,
    *,
    input_path: Path | None,
    input_data: bytes | None,
    input_name: str | None,
    owner: tuple[int, int] | None,
    max_input_bytes: int,
) -> None:
    for sub in ("tmp", "work", "work/output"):
        os.mkdir(sub, 0o700, dir_fd=root)
    created = ["tmp", "work", "work/output", "task.py"]
    fd = os.open("task.py", _NEW_FILE, 0o600, dir_fd=root)
    try:
        _write_all(fd, code.encode("utf-8", "surrogateescape"))
    finally:
        os.close(fd)
    if input_path is not None:
        target = "work/" + safe_input_name(input_name or input_path.name)
        _copy_input(input_path, root, target=target, limit=max_input_bytes)
        created.append(target)
    elif input_data is not None:
        if len(input_data) > max_input_bytes:
            raise ValueError(
                f"input is {len(input_data)} bytes, over the {max_input_bytes}-byte limit"
            )
        target = "work/" + safe_input_name(input_name)
        fd = os.open(target, _NEW_FILE, 0o600, dir_fd=root)
        try:
            _write_all(fd, input_data)
        finally:
            os.close(fd)
        created.append(target)
    if owner is not None:
        for path in created:
            os.chown(path, *owner, dir_fd=root, follow_symlinks=False)
        os.chown(root, *owner)


def _copy_input(source: Path, root: int, *, target: str, limit: int) -> None:
    with open(source, "rb") as src:
        info = os.fstat(src.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ValueError(f"input {source} is not a regular file")
        if info.st_size > limit:
            raise ValueError(f"input is {info.st_size} bytes, over the {limit}-byte limit")
        fd = os.open(target, _NEW_FILE, 0o600, dir_fd=root)
        try:
            copied = 0
            while chunk := os.sendfile(fd, src.fileno(), None, 1 << 20):
                copied += chunk
                if copied > limit:
                    raise ValueError(f"input grew over the {limit}-byte limit while copying")
        finally:
            os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def collect_outputs(
    run_dir: Path,
    *,
    max_bytes: int,
    owner_uid: int | None,
    max_files: int = MAX_OUTPUT_FILES,
) -> tuple[tuple[OutputFile, ...], tuple[str, ...]]:
    """Regular files under work/output (never through a symlink); (collected, omitted).

    ``max_bytes`` is for all files together: a file that does not fit in what is left is
    omitted (named, not kept)."""
    collected: list[OutputFile] = []
    omitted: list[str] = []
    try:
        root = os.open(run_dir, _DIR_FLAGS)
    except OSError:
        return (), ()
    fds = [root]
    try:
        for part in ("work", "output"):
            fds.append(os.open(part, _DIR_FLAGS, dir_fd=fds[-1]))
        for name, fd in _walk(fds[-1], "", depth=0):
            try:
                info = os.fstat(fd)
                if owner_uid is not None and info.st_uid != owner_uid:
                    continue
                if info.st_size > max_bytes or len(collected) >= max_files:
                    omitted.append(name)
                    continue
                content = _read_at_most(fd, info.st_size)
                max_bytes -= len(content)
                collected.append(OutputFile(name, len(content), content))
            finally:
                os.close(fd)
    except OSError:
        logger.warning("output/ of %s is not a plain directory; nothing collected", run_dir)
    finally:
        for fd in fds:
            os.close(fd)
    return tuple(collected), tuple(omitted)


def _walk(dir_fd: int, prefix: str, *, depth: int) -> Iterator[tuple[str, int]]:
    """Yield (relative name, open fd) of regular files; the caller closes each fd."""
    with os.scandir(dir_fd) as entries:
        names = sorted(entry.name for entry in entries)
    for raw in names:
        name = prefix + raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        try:
            fd = os.open(raw, _FILE_FLAGS, dir_fd=dir_fd)
        except OSError:
            continue  # a symlink (ELOOP), a socket, or gone
        mode = os.fstat(fd).st_mode
        if stat.S_ISREG(mode):
            yield name, fd
            continue
        try:
            if stat.S_ISDIR(mode) and depth < MAX_OUTPUT_DEPTH:
                yield from _walk(fd, name + "/", depth=depth + 1)
        finally:
            os.close(fd)


def _read_at_most(fd: int, size: int) -> bytes:
    chunks: list[bytes] = []
    remaining = size
    while remaining > 0:
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def remove_run_dir(path: Path) -> bool:
    """Remove a run directory whatever shape the run left; True when it is gone."""
    try:
        remove_tree(path)
    except OSError:
        logger.exception("cannot remove run dir %s", path)
        return False
    return True


def remove_tree(path: Path | str) -> None:
    """``rm -rf`` without recursion or symlink following, holding at most three fds.

    Walks down by opening each subdirectory from its parent (O_NOFOLLOW) and back up through
    "..", checked against the recorded parent, so depth, names, modes, fifos, sockets and
    symlinks of any kind cannot make it fail, follow a link or run out of stack or fds. The
    processes that made the tree must be dead (nothing may rename it meanwhile)."""
    try:
        fd = os.open(path, _DIR_FLAGS)
    except FileNotFoundError:
        return
    except PermissionError:
        os.chmod(path, 0o700)  # not root, and the run made its own directory mode 000
        fd = os.open(path, _DIR_FLAGS)
    except OSError as exc:
        if exc.errno not in (errno.ENOTDIR, errno.ELOOP):
            raise
        os.unlink(path)  # a file or a symlink where a directory was expected
        return
    if os.geteuid() != 0:
        with contextlib.suppress(OSError):
            os.fchmod(fd, 0o700)
    parents: list[tuple[str, tuple[int, int]]] = []
    try:
        while True:
            child = _empty_but_dirs(fd)
            if child is not None:
                info = os.fstat(fd)
                sub = _open_subdir(fd, child)
                os.close(fd)
                fd = sub
                parents.append((child, (info.st_dev, info.st_ino)))
                continue
            if not parents:
                break
            name, expected = parents.pop()
            up = os.open("..", _DIR_FLAGS, dir_fd=fd)
            info = os.fstat(up)
            os.close(fd)
            fd = up
            if (info.st_dev, info.st_ino) != expected:
                raise OSError(errno.ESTALE, f"{path} changed while it was being removed")
            os.rmdir(name, dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(path)


def _empty_but_dirs(fd: int) -> str | None:
    """Unlink every non-directory in fd; return one subdirectory's name, or None if empty."""
    while True:
        removed = False
        with os.scandir(fd) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    return entry.name
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.name, dir_fd=fd)
                removed = True
        if not removed:
            return None


def _open_subdir(fd: int, name: str) -> int:
    try:
        sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
    except PermissionError:  # mode 000 (only without CAP_DAC_OVERRIDE): it is ours to fix
        path_fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
        try:
            if not stat.S_ISDIR(os.fstat(path_fd).st_mode):
                raise
            os.chmod(f"/proc/self/fd/{path_fd}", 0o700)
        finally:
            os.close(path_fd)
        sub = os.open(name, _DIR_FLAGS, dir_fd=fd)
    if os.geteuid() != 0:  # entries of a read-only directory cannot be unlinked otherwise
        with contextlib.suppress(OSError):
            os.fchmod(sub, 0o700)
    return sub
