"""The README's "Python API" section runs as written: its python blocks, in order, in one
namespace (a later block uses what an earlier one made), from a scratch folder."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def api_blocks(text: str) -> list[str]:
    """The python code blocks of the "## Python API" section of ``text`` (up to the next
    second-level heading), in order."""
    start = text.index("\n## Python API\n")
    end = text.find("\n## ", start + 1)
    section = text[start:] if end < 0 else text[start:end]
    return re.findall(r"^```python\n(.*?)^```$", section, flags=re.S | re.M)


def test_the_sections_blocks_are_found():
    blocks = api_blocks(README.read_text())
    assert len(blocks) == 2, [b[:60] for b in blocks]
    assert "Separator(priors" in blocks[0] and "PosteriorSeparator(" in blocks[1]


def test_the_python_api_blocks_run_as_written(tmp_path, monkeypatch, capsys):
    """Every name is defined and every call accepted; the separations run: ``separate_file``
    names the bundled example's estimates by class, and the last ``result`` (the posterior
    sampling's) is ``[K, T]`` and sums to the mixture."""
    import torch

    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "readme"}
    for block in api_blocks(README.read_text()):
        exec(compile(block, f"{README} (Python API)", "exec"), namespace)
    capsys.readouterr()
    result, mixture, estimates = namespace["result"], namespace["mixture"], namespace["estimates"]
    assert sorted(estimates) == ["digits", "drums"] and estimates["digits"].shape == mixture.shape
    assert result.masked.shape == (2, mixture.shape[-1])
    assert torch.allclose(result.masked.sum(0), mixture, atol=1e-4)
    assert namespace["paper"].objective_name == "paper" and namespace["mine"].config.restarts == 2
