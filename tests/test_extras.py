"""Optional dependencies (priorsep._extras) and the figures (priorsep.plots)."""

from __future__ import annotations

import doctest
import sys

import numpy as np
import pytest

from priorsep import _extras, plots
from priorsep.errors import MissingDependencyError, PriorsepError


def test_require_imports_or_gives_the_install_hint(monkeypatch):
    assert doctest.testmod(_extras).failed == 0
    assert _extras.require("numpy", "plot", "x") is np
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    hint = r"^matplotlib is needed for figures: pip install 'priorsep\[plot\]'$"
    with pytest.raises(MissingDependencyError, match=hint):
        _extras.require("matplotlib", "plot", "figures")
    assert issubclass(MissingDependencyError, PriorsepError) and issubclass(MissingDependencyError, ImportError)


def test_require_does_not_hide_a_broken_package(monkeypatch, tmp_path):
    # an installed package whose own import fails for a missing module of its own
    (tmp_path / "brokenpkg").mkdir()
    (tmp_path / "brokenpkg" / "__init__.py").write_text("import no_such_module_priorsep\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as info:
        _extras.require("brokenpkg", "plot", "x")
    assert not isinstance(info.value, MissingDependencyError)


def _panels():
    rng = np.random.default_rng(0)
    return [("a", rng.standard_normal(4096) * 0.1), ("b", None), ("c", np.sin(np.arange(4096) * 0.3))]


@pytest.mark.parametrize("name", ["grid.png", "grid"])
def test_spectrogram_grid_writes_a_png_atomically(tmp_path, name):
    pytest.importorskip("matplotlib")
    path = plots.spectrogram_grid(_panels(), 16000, tmp_path / name, title="t", dpi=30)
    assert path == tmp_path / name
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"  # PNG even without a suffix
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temporary file left


def test_spectrogram_grid_without_matplotlib_is_one_install_hint(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingDependencyError, match=r"^matplotlib is needed for .*: pip install 'priorsep\[plot\]'$"):
        plots.spectrogram_grid(_panels(), 16000, tmp_path / "x.png")
    assert list(tmp_path.iterdir()) == []
