from __future__ import annotations

import pytest

from bot.services.validation import check_code

PACKAGES = ("numpy", "pandas")


def check(code: str, max_bytes: int = 10_000):  # type: ignore[no-untyped-def]
    return check_code(code, allowed_packages=PACKAGES, max_bytes=max_bytes)


def test_accepts_stdlib_and_allowed_packages_and_reports_them() -> None:
    code = (
        "from __future__ import annotations\nimport csv, json\nimport pandas as pd\n"
        "from collections import Counter\n\ndef run(input_path):\n    return 1\n"
    )
    result = check(code)
    assert result.ok, result.error
    assert result.imports == ("collections", "csv", "json", "pandas")


def test_syntax_error_names_the_line() -> None:
    result = check("def run(p):\n    return (\n")
    assert not result.ok
    assert result.error is not None and "SyntaxError at line" in result.error


@pytest.mark.parametrize(
    ("code", "needle"),
    [
        ("x = 1\n", "must define a top-level function `run(input_path)`"),
        ("def main(p):\n    return 1\n", "must define a top-level function"),
        ("class A:\n    def run(self, p):\n        return 1\n", "must define a top-level"),
        ("def run():\n    return 1\n", "must take one argument"),
        ("def run(a, b):\n    return 1\n", "exactly one argument"),
        ("def run(a, *, b):\n    return 1\n", "also requires b"),
        ("async def run(p):\n    return 1\n", "not `async def`"),
    ],
)
def test_run_must_take_one_argument(code: str, needle: str) -> None:
    result = check(code)
    assert not result.ok
    assert result.error is not None and needle in result.error


@pytest.mark.parametrize(
    "code", ["def run(p=None):\n  return 1\n", "def run(p, q=2):\n  return 1\n"]
)
def test_optional_extra_arguments_are_fine(code: str) -> None:
    assert check(code).ok


@pytest.mark.parametrize(
    ("code", "needle"),
    [
        ("import requests\ndef run(p):\n  return 1\n", "imports not allowed: requests"),
        ("def run(p):\n  import torch.nn\n  return 1\n", "imports not allowed: torch"),
        ("from sklearn import svm\ndef run(p):\n  return 1\n", "imports not allowed: sklearn"),
        ("def run(p):\n  return __import__('requests')\n", "imports not allowed: requests"),
        ("import importlib\ndef run(p):\n  return importlib.import_module('boto3')\n", "boto3"),
        ("def run(p):\n  m = 'os'\n  return __import__(m)\n", "name their module literally"),
        ("from . import x\ndef run(p):\n  return 1\n", "relative imports"),
    ],
)
def test_forbidden_imports_are_named(code: str, needle: str) -> None:
    result = check(code)
    assert not result.ok
    assert result.error is not None and needle in result.error
    if "not allowed" in needle:
        assert "numpy, pandas" in result.error


def test_size_cap_counts_bytes() -> None:
    code = "def run(p):\n    return '" + "é" * 600 + "'\n"
    assert check(code, max_bytes=5000).ok
    result = check(code, max_bytes=1000)
    assert not result.ok
    assert result.error is not None and "over the limit of 1000" in result.error


def test_empty_code_is_refused() -> None:
    assert not check("   \n").ok


def test_an_allowed_package_that_is_not_installed_is_named() -> None:
    code = "import not_installed_pkg_xyz\nimport pandas\ndef run(p):\n  return 1\n"
    result = check_code(
        code, allowed_packages=("pandas", "not_installed_pkg_xyz"), max_bytes=10_000
    )
    assert not result.ok and result.error is not None
    assert "allowed but not installed on this server: not_installed_pkg_xyz" in result.error
    assert "pandas" not in result.error.split("installed on this server:")[1]
