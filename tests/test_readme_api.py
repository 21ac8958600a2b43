"""The documentation's Python examples run as written, from a scratch folder: the python blocks
of the Python API page (docs/api.md), in order, in one namespace (a later block uses what an
earlier one made), and the block of the README's "Python API" section."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
API_PAGE = ROOT / "docs" / "api.md"


def python_blocks(text: str, section: str | None = None) -> list[str]:
    """The python code blocks of ``text``, in order; with ``section``, only those of the
    second-level section of that title (up to the next second-level heading)."""
    if section is not None:
        start = text.index(f"\n## {section}\n")
        end = text.find("\n## ", start + 1)
        text = text[start:] if end < 0 else text[start:end]
    return re.findall(r"^```python\n(.*?)^```$", text, flags=re.S | re.M)


def run(path: Path, blocks: list[str]) -> dict:
    namespace: dict = {"__name__": "docs"}
    for block in blocks:
        exec(compile(block, f"{path} (python block)", "exec"), namespace)
    return namespace


def test_the_blocks_are_found():
    page = python_blocks(API_PAGE.read_text())
    assert len(page) == 2, [b[:60] for b in page]
    assert "Separator(priors" in page[0] and "PosteriorSeparator(" in page[1]
    readme = python_blocks(README.read_text(), "Python API")
    assert len(readme) == 1 and "Separator(priors" in readme[0]


def test_the_api_pages_blocks_run_as_written(tmp_path, monkeypatch, capsys):
    """Every name is defined and every call accepted; the separations run: ``separate_file``
    names the bundled example's estimates by class, and the last ``result`` (the posterior
    sampling's) is ``[K, T]`` and sums to the mixture."""
    import torch

    monkeypatch.chdir(tmp_path)
    namespace = run(API_PAGE, python_blocks(API_PAGE.read_text()))
    capsys.readouterr()
    result, mixture, estimates = namespace["result"], namespace["mixture"], namespace["estimates"]
    assert sorted(estimates) == ["digits", "drums"] and estimates["digits"].shape == mixture.shape
    assert result.masked.shape == (2, mixture.shape[-1])
    assert torch.allclose(result.masked.sum(0), mixture, atol=1e-4)
    assert namespace["paper"].objective_name == "paper" and namespace["mine"].config.restarts == 2


def test_the_readmes_python_api_block_runs_as_written(tmp_path, monkeypatch, capsys):
    """The README's short tour: the search's estimates sum to the mixture, and
    ``separate_file`` names its estimates by class."""
    import torch

    monkeypatch.chdir(tmp_path)
    namespace = run(README, python_blocks(README.read_text(), "Python API"))
    capsys.readouterr()
    result, mixture, estimates = namespace["result"], namespace["mixture"], namespace["estimates"]
    assert result.masked.shape == (2, mixture.shape[-1])
    assert torch.allclose(result.masked.sum(0), mixture, atol=1e-4)
    assert sorted(estimates) == ["digits", "drums"] and estimates["drums"].shape == mixture.shape
