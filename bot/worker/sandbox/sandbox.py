"""The Sandbox: a pool of warm zygote slots that run untrusted task modules."""

from __future__ import annotations

import fcntl
import functools
import logging
import os
import queue
import re
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from ._cgroup import SlotCgroup, create_slot_cgroup, remove_stale
from ._interpreter import check_readable
from ._rundir import remove_tree
from ._slot import Slot, SlotConfig
from ._uids import UidLease, uid_in_use
from .models import SandboxLimits, SandboxResult, SandboxUnavailable, stopped_before_start
from .probe import HostIsolation, probe_host
from .switch import StopSwitch

logger = logging.getLogger(__name__)


_WORK_PREFIX = "taskbot-sandbox-"
_CGROUP_PREFIX = "taskbot-sandbox-"


def _uid_name_in_use(suffix: str) -> bool:
    return not suffix.isdigit() or uid_in_use(int(suffix))


def _remove_stale_work_roots(parent: Path) -> None:
    """Work roots left by crashed processes: their lock file is no longer held."""
    for root in parent.glob(_WORK_PREFIX + "*"):
        try:
            fd = os.open(root / ".lock", os.O_RDWR | os.O_CLOEXEC)
        except OSError:
            continue  # not ours, or a root of an older version: leave it
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # alive
        finally:
            os.close(fd)
        _remove_quietly(root)


def _remove_quietly(path: Path) -> None:
    try:
        remove_tree(path)
    except OSError:
        logger.exception("cannot remove %s", path)


def _default_python() -> str:
    """The app's interpreter (a venv's bin/python keeps its site-packages under -I)."""
    python = sys.executable
    if not python or "/shims/" in python:
        raise SandboxUnavailable("sys.executable is missing or a pyenv shim; pass python=")
    return python


# The base set for data jobs, warm in every zygote (Settings.sandbox_packages by default).
BASE_PACKAGES = ("numpy", "pandas", "matplotlib", "PIL", "openpyxl", "pyarrow", "pypdf", "docx")


@functools.lru_cache(maxsize=16)
def _mentions(packages: frozenset[str]) -> re.Pattern[str]:
    names = [*sorted(packages), "__import__", "import_module"]
    return re.compile(r"\b(?:" + "|".join(re.escape(name) for name in names) + r")\b")


def uses_packages(code: str, packages: frozenset[str]) -> bool:
    """Whether ``code`` may import one of ``packages``: it names one anywhere (in an import, a
    string handed to ``exec``, even a comment), or imports by name at run time. Erring towards
    yes only costs speed."""
    return bool(packages) and _mentions(packages).search(code) is not None


class Sandbox:
    """``slots`` runs at a time. With ``packages``, each of the ``slots`` has a twin zygote
    without them (``light``): a run whose code imports none of the packages is forked from a
    small interpreter, whose fork, page faults and exit cost a fraction of the warm one's.
    Both kinds are confined alike (own uid, tmpfs, cgroups, namespaces)."""

    def __init__(
        self,
        *,
        slots: int = 2,
        limits: SandboxLimits = SandboxLimits(),  # noqa: B008 - frozen, shared safely
        packages: Sequence[str] = BASE_PACKAGES,
        work_root: Path | None = None,
        python: str | None = None,
        allow_insecure: bool = False,
        recycle_after: int = 200,
        probe: Callable[[], HostIsolation] = probe_host,
        light: bool = True,
    ) -> None:
        if slots < 1 or recycle_after < 1:
            raise ValueError("slots and recycle_after must be >= 1")
        self._slot_count = slots
        self._limits = limits
        self._packages = tuple(packages)
        self._package_set = frozenset(packages)
        self._light = light and bool(self._packages)
        self._work_root_arg = work_root
        self._python = python
        self._allow_insecure = allow_insecure
        self._recycle_after = recycle_after
        self._probe = probe
        self._isolation: HostIsolation | None = None
        self._slots: list[Slot] = []  # the light ones first, when there are any
        self._free: dict[bool, queue.Queue[Slot]] = {True: queue.Queue(), False: queue.Queue()}
        self._running = threading.BoundedSemaphore(slots)
        self._work_root: Path | None = None
        self._owns_work_root = False
        self._root_lock: int | None = None
        self._uids: UidLease | None = None
        self._lock = threading.Lock()
        self._started = False
        self._closed = False

    @property
    def isolation(self) -> HostIsolation:
        if self._isolation is None:
            self._isolation = self._probe()
        return self._isolation

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            iso = self._isolation = self._probe()
            self._check(iso)
            try:
                self._start_slots(iso)
            except Exception as exc:
                self._teardown()
                if isinstance(exc, SandboxUnavailable):
                    raise
                raise SandboxUnavailable(f"sandbox could not start: {exc}") from exc
            self._started = True

    def _check(self, iso: HostIsolation) -> None:
        for warning in iso.warnings:
            logger.info("sandbox: %s", warning)
        if iso.secure:
            return
        reasons = "; ".join(iso.problems)
        if not self._allow_insecure:
            raise SandboxUnavailable(
                f"refusing to run untrusted code: this host cannot isolate it ({reasons}). "
                "Run as root on a kernel with Landlock and seccomp, or set SANDBOX_INSECURE=1 "
                "to accept the risk."
            )
        logger.warning(
            "!!! SANDBOX INSECURE (SANDBOX_INSECURE=1): running untrusted code without full "
            "isolation: %s !!!",
            reasons,
        )

    def _start_slots(self, iso: HostIsolation) -> None:
        python = self._python or _default_python()
        root = self._make_work_root()
        kinds = [True, False] if self._light else [False]
        count = self._slot_count * len(kinds)
        if iso.is_root:
            self._uids = UidLease(count)
            remove_stale(iso, _CGROUP_PREFIX, in_use=_uid_name_in_use)
        namespaces = (
            iso.network_namespace and iso.mount_namespace and iso.pid_namespace and iso.mount_view
        )
        if iso.is_root:  # runs drop to per-slot uids: they must be able to read the library
            check_readable(python, whole_path=not namespaces)
        for index in range(count):
            light = kinds[index // self._slot_count]
            uid = self._uids.uids[index] if self._uids else None
            slot_dir = root / f"slot-{index}"
            if slot_dir.exists():
                remove_tree(slot_dir)
            slot_dir.mkdir(mode=0o711)
            os.chmod(slot_dir, 0o711)
            cache_dir = root / f"cache-{index}"
            if cache_dir.exists():
                remove_tree(cache_dir)
            cache_dir.mkdir(mode=0o700)
            config = SlotConfig(
                cache_dir=cache_dir,
                index=index,
                python=python,
                slot_dir=slot_dir,
                uid=uid,
                gid=uid,
                namespaces=namespaces,
                scratch_bytes=self._limits.memory_bytes + self._limits.max_input_bytes,
                packages=() if light else self._packages,
                seccomp=iso.seccomp,
                landlock_abi=iso.landlock_abi,
            )
            name = _CGROUP_PREFIX + (str(uid) if uid is not None else f"pid{os.getpid()}-{index}")
            cgroup: SlotCgroup | None = create_slot_cgroup(iso, name)
            self._slots.append(Slot(config, cgroup, light=light))
        errors: list[BaseException] = []

        def boot(slot: Slot) -> None:
            try:
                slot.start()
            except BaseException as exc:
                logger.exception("sandbox slot %d failed to start", slot.config.index)
                errors.append(exc)

        threads = [threading.Thread(target=boot, args=(s,), daemon=True) for s in self._slots]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        self._verify_features(namespaces)
        for slot in self._slots:
            self._free[slot.light].put(slot)

    def _verify_features(self, namespaces: bool) -> None:
        for slot in self._slots:
            entered = set(slot.features.get("namespaces") or ())
            missing = namespaces and not (
                {"net", "mnt", "pid"} <= entered and slot.features.get("mount_view")
            )
            if missing and not self._allow_insecure:
                raise SandboxUnavailable("the zygote could not enter its namespaces")
            errors = slot.features.get("import_errors") or {}
            for package, error in errors.items():
                logger.warning("sandbox package %s failed to import: %s", package, error)

    def _make_work_root(self) -> Path:
        if self._work_root_arg is None:
            _remove_stale_work_roots(Path(tempfile.gettempdir()))
            root = Path(tempfile.mkdtemp(prefix=_WORK_PREFIX))
            self._owns_work_root = True
        else:
            root = self._work_root_arg
            root.mkdir(parents=True, exist_ok=True)
        os.chmod(root, 0o711)
        self._work_root = root
        # Held while running: a later start removes roots whose lock is free (crashed owners).
        self._root_lock = os.open(root / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self._root_lock, fcntl.LOCK_EX)
        return root

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._teardown()

    def _teardown(self) -> None:
        for slot in self._slots:
            try:
                slot.stop()
                if slot.cgroup is not None:
                    slot.cgroup.remove()
            except Exception:
                logger.exception("error stopping sandbox slot %d", slot.config.index)
        self._slots.clear()
        if self._uids is not None:
            self._uids.release()
            self._uids = None
        if self._work_root is not None:
            target = self._work_root if self._owns_work_root else None
            for path in [target] if target else self._work_root.glob("slot-*"):
                _remove_quietly(path)
            self._work_root = None
        if self._root_lock is not None:
            os.close(self._root_lock)
            self._root_lock = None
        self._started = False

    def __enter__(self) -> Sandbox:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- runs -------------------------------------------------------------------------------
    def run(
        self,
        *,
        code: str,
        input_path: Path | None,
        input_name: str | None = None,
        limits: SandboxLimits | None = None,
        stop: StopSwitch | None = None,
        input_data: bytes | None = None,
    ) -> SandboxResult:
        """Run `code` (a module defining run(input_path)) in a free slot; thread-safe. The
        input is the file ``input_path``, or ``input_data`` (named ``input_name``) written into
        the run's directory as it is. Flipping ``stop`` kills the run (killed, reason
        "stopped")."""
        if not self._started or self._closed:
            raise RuntimeError("Sandbox.start() first (or it was closed)")
        if input_path is not None and input_data is not None:
            raise ValueError("an input file or input bytes, not both")
        effective = limits or self._limits
        if input_path is not None and not input_path.is_file():
            raise FileNotFoundError(f"input {input_path} is not a readable regular file")
        if stop is not None and stop.flipped:  # stopped before it was handed over
            return stopped_before_start()
        light = self._light and not uses_packages(code, self._package_set)
        slot = self._acquire(light, stop)
        if slot is None:  # stopped while it waited for a slot: it never started
            return stopped_before_start()
        recycle = False
        try:
            for attempt in range(2):
                if slot.broken:
                    slot.restart()
                try:
                    result = slot.run(
                        code=code,
                        input_path=input_path,
                        input_name=input_name,
                        limits=effective,
                        stop=stop,
                        input_data=input_data,
                    )
                    break
                except OSError:  # the zygote vanished under us: restart it and retry once
                    logger.exception("sandbox slot %d failed; restarting", slot.config.index)
                    slot.broken = True
                    if attempt:
                        raise
            recycle = slot.broken or slot.runs >= self._recycle_after
            return result
        except BaseException:
            recycle = slot.broken
            raise
        finally:
            if recycle and not self._closed:
                threading.Thread(target=self._recycle, args=(slot,), daemon=True).start()
            else:
                self._free[slot.light].put(slot)
            self._running.release()

    def _acquire(self, light: bool, stop: StopSwitch | None) -> Slot | None:
        """A free slot of the kind, once fewer than ``slots`` runs are running; None when
        ``stop`` flipped meanwhile (looked at every 0.1 s while all slots are busy)."""
        while not self._running.acquire(timeout=0.1):
            if self._closed:
                raise RuntimeError("the Sandbox was closed")
            if stop is not None and stop.flipped:
                return None
        try:
            while True:
                try:
                    return self._free[light].get(timeout=0.1)
                except queue.Empty:
                    if self._closed:
                        raise RuntimeError("the Sandbox was closed") from None
                    if stop is not None and stop.flipped:
                        self._running.release()
                        return None
        except BaseException:
            self._running.release()
            raise

    def _recycle(self, slot: Slot) -> None:
        try:
            slot.restart()
        except Exception:
            logger.exception("sandbox slot %d failed to restart", slot.config.index)
        finally:
            self._free[slot.light].put(slot)
