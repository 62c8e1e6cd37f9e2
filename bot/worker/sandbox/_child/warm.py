"""What the packages do at import and first use, done once in the zygote, made safe for a run.

Warm imports must survive the fork: a package's open file handles (matplotlib's FreeType
fonts) are closed in the child with every other descriptor, and its caches (matplotlib's
config and cache dirs, chosen once at import) point at the zygote's private directory. So the
zygote warms the hot paths, and each run drops what it cannot use and gets its own dirs.
"""

from __future__ import annotations

import io
import sys
from typing import Any


def warm_up(package: str) -> None:
    """Run the package's hot paths on synthetic data, so a child finds them warm.

    Called in the zygote (lazy imports, caches) and in a spare after fork (to take the
    copy-on-write page faults before the run arrives rather than during it).
    """
    if package == "pandas":
        pandas: Any = sys.modules["pandas"]
        frame = pandas.read_csv(io.BytesIO(b"key,count,value\nx,1,2.5\ny,3,4.5\n"))
        frame.describe().to_dict()
        frame.to_dict(orient="records")
    elif package == "pyarrow":
        pyarrow: Any = sys.modules["pyarrow"]
        pyarrow.default_memory_pool()  # chosen once, here: the system allocator (zygote env)
    elif package == "matplotlib":
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        # Builds the font list, loads the default font and the PNG writer.
        figure, axes = plt.subplots(figsize=(2, 1.5), dpi=50)
        axes.plot([1, 2, 3], [1, 3, 2], label="warm")
        axes.set_title("warm")
        axes.legend()
        figure.savefig(io.BytesIO(), format="png")
        plt.close(figure)


def release_handles() -> None:
    """In the run's process, before its descriptors are closed: drop the fonts the spare
    opened while warming up, so nothing opened before the run is used (or closed) in it."""
    font_manager: Any = sys.modules.get("matplotlib.font_manager")
    if font_manager is not None:
        font_manager._get_font.cache_clear()


def point_caches(tmp_dir: str) -> None:
    """Every cache the packages write goes to the run's own directory: matplotlib chose its
    config and cache dirs once at import (the zygote's private dir, out of the run's reach)."""
    matplotlib: Any = sys.modules.get("matplotlib")
    if matplotlib is None:
        return

    def run_dir() -> str:
        return tmp_dir

    matplotlib.get_configdir = run_dir
    matplotlib.get_cachedir = run_dir
