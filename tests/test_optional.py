"""Optional packages: importing an integration without its package fails with one line that
names the extra to install (checked in a fresh interpreter with the package hidden)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from epochscope.errors import EpochscopeError
from epochscope.optional import MissingExtraError, require


@pytest.mark.parametrize("module, hidden, extra", [
    ("epochscope.integrations.lightning", ("lightning", "pytorch_lightning"), "lightning"),
    ("epochscope.integrations.transformers", ("transformers",), "transformers"),
])
def test_integration_without_its_package(module, hidden, extra):
    code = f"""
        import sys
        class Hide:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {hidden!r}:
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        sys.meta_path.insert(0, Hide())
        try:
            import {module}
        except ImportError as exc:
            print(type(exc).__name__, "|", exc)
    """
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    kind, message = done.stdout.strip().split(" | ", 1)
    assert kind == "MissingExtraError" and "\n" not in message
    assert f'pip install "epochscope[{extra}]"' in message


def test_require_tells_missing_from_broken(monkeypatch):
    monkeypatch.setitem(sys.modules, "not_here_pkg", None)
    with pytest.raises(MissingExtraError, match=r'needs the not_here_pkg package.*epochscope\[x\]'):
        require("not_here_pkg", extra="x", purpose="testing")
    assert issubclass(MissingExtraError, EpochscopeError) and issubclass(MissingExtraError, ImportError)
