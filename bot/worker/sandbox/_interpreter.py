"""Can a run's uid read the interpreter it runs on? Checked before any zygote starts.

Where Python lives under a directory the run's uid cannot enter (pyenv under a 0700 home is
common), every standard-library module the zygote did not import beforehand fails inside a
run: ``codecs.lookup('cp437')``, so ``zipfile`` and every ``.xlsx``; ``uuid`` for matplotlib.
With the mount view the run sees the library directories bound on a fresh root (their
parents created world-traversable), so only the directories themselves must be readable;
without it the whole path must be. Otherwise the sandbox refuses to start, in one line.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

from .models import SandboxUnavailable

_PATHS = (
    "import json, sys, sysconfig\n"
    "names = ('stdlib', 'platstdlib', 'purelib', 'platlib')\n"
    "print(json.dumps([sysconfig.get_path(n) for n in names]))\n"
)


def library_paths(python: str) -> list[str]:
    """The standard library and site-packages directories of ``python``, resolved."""
    done = subprocess.run(
        [python, "-I", "-c", _PATHS], capture_output=True, text=True, timeout=30, check=False
    )
    if done.returncode != 0:
        raise SandboxUnavailable(f"the sandbox's interpreter {python} does not start")
    paths = json.loads(done.stdout)
    return sorted({os.path.realpath(p) for p in paths if p and os.path.isdir(p)})


def _open_to_others(path: Path, *, read: bool) -> bool:
    mode = path.stat().st_mode
    needed = stat.S_IXOTH | (stat.S_IROTH if read else 0)
    return mode & needed == needed


def check_readable(python: str, *, whole_path: bool) -> None:
    """Raise SandboxUnavailable naming the first directory a run's uid could not pass."""
    for library in library_paths(python):
        target = Path(library)
        blocking = None if _open_to_others(target, read=True) else target
        if whole_path and blocking is None:
            blocking = next((p for p in target.parents if not _open_to_others(p, read=False)), None)
        if blocking is not None:
            mode = stat.S_IMODE(blocking.stat().st_mode)
            raise SandboxUnavailable(
                f"runs cannot read Python's library {library}: {blocking} is {mode:04o}, closed "
                "to the runs' unprivileged users. Install Python where other users may read it "
                "(e.g. /usr/local or /opt) or open that directory (chmod o+rx)."
            )
