import json

import numpy as np
import soundfile as sf
import torch

from priorsep import load_prior
from priorsep.cli import main
from priorsep.report import pick, project, report_table


def _draw(prior, n, seed):
    z = torch.rand(n, prior.latent_dim, generator=torch.Generator().manual_seed(seed)) * 2 - 1
    with torch.no_grad():
        return prior.generate(z).float()


def test_a_clip_the_prior_makes_at_the_start_is_reproduced_exactly():
    burst = load_prior("burst")
    with torch.no_grad():
        at_start = burst.generate(torch.zeros(1, burst.latent_dim)).float()
    clips = torch.cat([0.3 * at_start, _draw(burst, 1, 0)])  # gain must not matter
    proj = project(burst, clips, preset="paper", steps=0)
    assert proj.scores["projection"]["spectral_snr"][0] > 100  # float32 rounding only (the metric caps at 120)
    assert proj.scores["projection"]["si_sdr"][0] > 60
    np.testing.assert_array_equal(proj.scores["projection"]["spectral_snr"], proj.scores["start"]["spectral_snr"])
    assert proj.scores["projection"]["spectral_snr"][1] < 30  # a different burst is not at the start


def test_a_prior_fits_its_own_class_better_than_another():
    burst, tone = load_prior("burst"), load_prior("tone")
    own = project(burst, _draw(burst, 6, 1), preset="paper", steps=100).medians()
    other = project(burst, _draw(tone, 6, 1), preset="paper", steps=100).medians()
    assert own["projection"]["spectral_snr"] > other["projection"]["spectral_snr"] + 10
    assert own["projection"]["spectral_snr"] > own["start"]["spectral_snr"] + 5  # the search did the work


def test_pick_is_a_seeded_subset_and_the_table_lists_every_row():
    clips = torch.arange(10.0)[:, None].repeat(1, 4)
    a, b = pick(clips, 4, seed=3), pick(clips, 4, seed=3)
    assert torch.equal(a, b) and len(set(a[:, 0].tolist())) == 4
    assert pick(clips, 50).shape == (10, 4)
    burst = load_prior("burst")
    table = report_table({"bursts": project(burst, _draw(burst, 3, 2), steps=2)})
    assert table.count("| bursts | 3 |") == 3 and "| other clip |" in table


def _write(folder, clips):
    folder.mkdir()
    for i, clip in enumerate(clips):
        sf.write(folder / f"{i}.wav", (0.5 * clip / clip.abs().max()).numpy(), 16000)


def test_prior_report_command_prints_and_writes(tmp_path, capsys):
    burst, tone = load_prior("burst"), load_prior("tone")
    _write(tmp_path / "bursts", _draw(burst, 4, 5))
    _write(tmp_path / "tones", _draw(tone, 4, 5))
    out = tmp_path / "rep"
    assert main(["prior-report", "burst", "--data", str(tmp_path / "bursts"), "--other", str(tmp_path / "tones"),
                 "--n", "3", "--preset", "paper", "--steps", "40", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "bursts (own class) | 3 | projection |" in printed and "tones (other class)" in printed
    report = json.loads((out / "report.json").read_text())
    (other_label,) = report["own_minus_other"]
    assert other_label.endswith("/tones (other class)")  # the folder's last two parts name it
    margin = report["own_minus_other"][other_label]["spectral_snr"]
    assert margin > 5
    own = next(v for k, v in report["sets"].items() if k.endswith("/bursts (own class)"))
    assert len(own["per_clip"]["projection"]["spectral_snr"]) == 3 and own["median"]["projection"]["spectral_snr"] > 0
    for name in ("report.md", "samples.png", "projections.png"):
        assert (out / name).stat().st_size > 0

    (tmp_path / "one").mkdir()
    sf.write(tmp_path / "one" / "a.wav", np.sin(np.arange(16384) / 5) * 0.5, 16000)
    assert main(["prior-report", "burst", "--data", str(tmp_path / "one"), "--out", str(tmp_path / "r2")]) == 2
    assert "at least 2 clips" in capsys.readouterr().err
    assert not (tmp_path / "r2").exists()
