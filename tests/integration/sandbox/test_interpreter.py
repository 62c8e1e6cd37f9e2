"""An interpreter under a directory the runs' uids cannot enter (pyenv under a 0700 home):
runs see its whole standard library, or the sandbox refuses to start in one clear line."""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import sysconfig
from pathlib import Path

import pytest

from bot.worker.sandbox import Sandbox
from bot.worker.sandbox.models import SandboxUnavailable
from bot.worker.sandbox.probe import probe_host

from .conftest import TEST_LIMITS

# Every one of these is a standard-library module the zygote has not imported.
CODE = (
    "import codecs, io, uuid, zipfile\n"
    "def run(p):\n"
    "    codecs.lookup('cp437')\n"
    "    with zipfile.ZipFile(io.BytesIO(), 'w') as z:\n"
    "        z.writestr('a.txt', 'x')\n"
    "    return str(uuid.UUID(int=1))\n"
)


@pytest.fixture(scope="module")
def hidden_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A copy of this interpreter and its standard library under a 0700 directory."""
    home = tmp_path_factory.mktemp("home")
    os.chmod(home, 0o700)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    prefix = home / ".pyenv" / "versions" / "3"
    (prefix / "bin").mkdir(parents=True)
    binary = prefix / "bin" / version
    shutil.copy2(os.path.realpath(sys.executable), binary)
    shutil.copytree(
        sysconfig.get_path("stdlib", vars={"base": sys.base_prefix}),
        prefix / "lib" / version,
        ignore=shutil.ignore_patterns("test", "site-packages", "dist-packages", "__pycache__"),
        symlinks=True,
    )
    for sub in (prefix, prefix / "bin", prefix / "lib", prefix / "lib" / version):
        os.chmod(sub, 0o755)
    return str(binary)


def test_runs_see_the_whole_standard_library_of_a_hidden_interpreter(hidden_python: str) -> None:
    with Sandbox(slots=1, limits=TEST_LIMITS, packages=(), python=hidden_python) as box:
        result = box.run(code=CODE, input_path=None)
    assert result.status == "succeeded", (result.error_type, result.error_message)
    assert result.result == b"00000000-0000-0000-0000-000000000001"


def test_without_the_mount_view_the_sandbox_refuses_in_one_clear_line(hidden_python: str) -> None:
    host = probe_host()
    if not host.is_root:
        pytest.skip("only root drops runs to other uids")
    no_view = dataclasses.replace(host, mount_namespace=False, mount_view=False)
    box = Sandbox(
        slots=1,
        limits=TEST_LIMITS,
        packages=(),
        python=hidden_python,
        probe=lambda: no_view,
        allow_insecure=True,
    )
    with pytest.raises(SandboxUnavailable) as refused:
        box.start()
    box.close()
    message = str(refused.value)
    assert "\n" not in message
    assert f"runs cannot read Python's library {Path(hidden_python).parent.parent}" in message
    assert "is 0700" in message and "chmod o+rx" in message
