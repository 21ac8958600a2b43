import json
import math

import pytest
import torch
from safetensors.torch import save_file

from priorsep import WaveGANPrior, load_prior, save_prior
from priorsep.priors import (
    FAMILIES,
    BurstPrior,
    EncodablePrior,
    MagnitudePrior,
    Prior,
    PriorError,
    SavablePrior,
    TonePrior,
    builtin_names,
    check_prior,
    read_metadata,
    register_family,
)
from priorsep.priors.score import ScorePrior


def _bundled() -> list[str]:
    """The priors this checkout ships (which ones: scripts/check_release.py)."""
    from priorsep.priors import bundled_priors

    return sorted(bundled_priors())


def test_builtins_have_the_interface_and_stay_in_range():
    assert builtin_names() == ["burst", *_bundled(), "tone"]  # parametric and bundled, sorted
    assert {"digits", "drums", "piano"} <= set(_bundled())  # the default priors of the demo and --classes
    for name in builtin_names():
        prior = check_prior(load_prior(name))
        assert isinstance(prior, Prior) and isinstance(prior, SavablePrior)
        assert (prior.sample_rate, prior.length) == (16000, 16384)
        if isinstance(prior, ScorePrior):  # sampling takes 60 network calls: its noise prediction stands in
            x = torch.rand(2, prior.bins, prior.frames)  # [2, 256, 64], or [2, 512, 64] on a 1024-point image
            assert x.shape[1] == prior.n_fft // 2 and x.shape[2] == 64
            eps = prior.noise(x, torch.tensor([0.05, 2.0]))
            assert eps.shape == x.shape and torch.isfinite(eps).all()
            assert not isinstance(prior, EncodablePrior)
            continue
        z = torch.rand(5, prior.latent_dim) * 2 - 1
        x = prior.generate(z)
        assert x.shape == (5, 16384)
        assert torch.isfinite(x).all()
        if isinstance(prior, WaveGANPrior):
            assert x.abs().max() <= 1.0  # tanh output
        if isinstance(prior, MagnitudePrior):  # the decoder's output is capped
            mag = prior.magnitude(z)
            assert mag.shape == (5, prior.n_fft // 2 + 1, 16384 // prior.hop + 1)
            assert mag.min() >= 0 and mag.max() <= math.expm1(prior.max_log_magnitude) * (1 + 1e-5)
            assert isinstance(prior, EncodablePrior) and prior.encode(x).shape == (5, prior.latent_dim)
        else:
            assert not isinstance(prior, EncodablePrior)
        assert not torch.equal(x[0], x[1])  # different latents, different sources
        assert torch.equal(x, prior.generate(z))  # deterministic


def test_tone_fundamental_follows_z():
    prior = TonePrior()
    z = torch.zeros(1, prior.latent_dim)
    z[0, 0] = -1.0  # lowest fundamental: 150 Hz
    z[0, 1:5] = torch.tensor([1.0, -1.0, -1.0, -1.0])  # fundamental dominates
    z[0, -1] = 1.0  # slowest decay
    spec = torch.fft.rfft(prior.generate(z)[0]).abs()
    peak_hz = spec.argmax().item() * 16000 / 16384
    assert abs(peak_hz - 150.0) < 2.0


def test_burst_centre_follows_z():
    prior = BurstPrior()
    lo = prior.generate(torch.tensor([[-1.0, -1.0, 1.0]]))[0]
    hi = prior.generate(torch.tensor([[1.0, -1.0, 1.0]]))[0]
    freqs = torch.fft.rfftfreq(16384, 1 / 16000)

    def centroid(x):
        p = torch.fft.rfft(x).abs() ** 2
        return float((p * freqs).sum() / p.sum())

    assert centroid(lo) < 400 and centroid(hi) > 3000  # the lowest and highest centre of its band


def test_wavegan_roundtrip_keeps_weights_and_metadata(tmp_path):
    torch.manual_seed(0)
    prior = WaveGANPrior(d=4, name="digits")
    path = save_prior(prior, tmp_path / "digits.safetensors", training={"steps": 12}, data={"clips": 3})
    loaded = load_prior(path)
    meta = read_metadata(path)
    assert meta["arch"] == {"family": "wavegan", "d": 4, "latent_dim": 100}
    assert meta["training"] == {"steps": 12} and meta["data"] == {"clips": 3}
    assert (loaded.name, loaded.sample_rate, loaded.length, loaded.latent_dim) == ("digits", 16000, 16384, 100)
    z = torch.rand(2, 100) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded.generate(z), prior.generate(z))
    assert not list(tmp_path.glob("*.tmp"))


def test_parametric_prior_saved_at_another_rate(tmp_path):
    path = save_prior(TonePrior(sample_rate=8000, length=8192), tmp_path / "tone8k.safetensors")
    loaded = load_prior(path)
    assert (loaded.sample_rate, loaded.length) == (8000, 8192)


def test_unknown_name_lists_builtins():
    names = ", ".join(["burst", *_bundled(), "tone"])
    with pytest.raises(PriorError, match=f"no built-in prior named 'nope'.*{names}"):
        load_prior("nope")


def test_not_a_prior_file(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file at all")
    with pytest.raises(PriorError, match="not a saved prior"):
        load_prior(junk)
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(plain))
    with pytest.raises(PriorError, match="not a priorsep prior"):
        load_prior(plain)


def _rewrite_meta(src, dst, **changes):
    from safetensors import safe_open

    with safe_open(str(src), framework="pt") as f:
        meta = json.loads(f.metadata()["priorsep"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    meta.update(changes)
    save_file(tensors, str(dst), metadata={"priorsep": json.dumps(meta)})


def test_prior_of_the_wrong_length_or_architecture_is_refused(tmp_path):
    good = save_prior(WaveGANPrior(d=4), tmp_path / "good.safetensors")
    wrong_len = tmp_path / "len.safetensors"
    _rewrite_meta(good, wrong_len, length=8192)
    with pytest.raises(PriorError, match="length 8192"):
        load_prior(wrong_len)
    wrong_d = tmp_path / "d.safetensors"
    _rewrite_meta(good, wrong_d, arch={"family": "wavegan", "d": 8, "latent_dim": 100})
    with pytest.raises(PriorError, match="do not match the architecture"):
        load_prior(wrong_d)
    unknown = tmp_path / "fam.safetensors"
    _rewrite_meta(good, unknown, arch={"family": "diffusion"})
    with pytest.raises(PriorError, match="unknown prior family 'diffusion'"):
        load_prior(unknown)


def test_check_prior_names_what_is_missing():
    class Half:
        name = "half"
        latent_dim = 3

    with pytest.raises(PriorError, match="lacks sample_rate, length, latent_bound, generate"):
        check_prior(Half())

    class Unboxed:
        name, latent_dim, sample_rate, length, latent_bound = "unboxed", 3, 16000, 16384, 0.0

        def generate(self, z):
            return z

    with pytest.raises(PriorError, match="latent_bound=0.0; expected a positive number or None"):
        check_prior(Unboxed())
    Unboxed.latent_bound = None  # unbounded latents are allowed
    assert check_prior(Unboxed()).latent_bound is None


def test_parametric_options_round_trip(tmp_path):
    tone = load_prior(save_prior(TonePrior(harmonics=6), tmp_path / "t6.safetensors"))
    assert tone.latent_dim == 8
    burst = BurstPrior(noise_seed=5)
    loaded = load_prior(save_prior(burst, tmp_path / "b5.safetensors"))
    z = torch.zeros(1, 3)
    assert torch.equal(loaded.generate(z), burst.generate(z))
    assert not torch.equal(loaded.generate(z), BurstPrior().generate(z))


def test_save_prior_refuses_reserved_keys_and_load_refuses_folders(tmp_path):
    with pytest.raises(ValueError, match="name"):
        save_prior(TonePrior(), tmp_path / "x.safetensors", name="other")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(PriorError, match="is a folder"):
        load_prior(tmp_path)


def test_nearest_upsampling_wavegan_has_the_shapes_and_size_of_the_paper_one(tmp_path):
    from priorsep.priors.wavegan import WaveGANGenerator

    paper, nearest = WaveGANGenerator(d=4), WaveGANGenerator(d=4, upsample="nearest")
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    # a Conv1d(cin, cout) and a ConvTranspose1d(cin, cout) with one kernel size hold the same number of weights
    assert count(paper) == count(nearest)
    z = torch.rand(3, 100) * 2 - 1
    assert nearest(z).shape == (3, 1, 16384) and nearest(z).abs().max() <= 1
    prior = WaveGANPrior(d=4, name="nn", upsample="nearest")
    path = save_prior(prior, tmp_path / "nn.safetensors")
    loaded = load_prior(path)
    assert loaded.upsample == "nearest" and read_metadata(path)["arch"]["upsample"] == "nearest"
    assert torch.equal(loaded.generate(z), prior.generate(z))
    # a file without the key (written before the option existed) is the paper's generator
    assert "upsample" not in read_metadata(save_prior(WaveGANPrior(d=4), tmp_path / "t.safetensors"))["arch"]
    with pytest.raises(ValueError, match="upsample must be one of"):
        WaveGANGenerator(d=4, upsample="linear")


def test_specvae_roundtrip_interface_and_a_decoder_that_fits_its_encoder(tmp_path):
    from priorsep.priors.specvae import SpecVAE

    torch.manual_seed(0)
    prior = SpecVAE(channels=8, latent_dim=5, name="vae")
    check_prior(prior)
    assert prior.latent_bound == 6.0 and (prior.n_fft, prior.hop) == (1024, 256)
    x = torch.randn(2, 16384) * 0.1
    z = prior.encode(x)
    assert z.shape == (2, 5)
    mag = prior.magnitude(z)
    assert mag.shape == (2, 513, 65) and (mag >= 0).all()
    wave = prior.generate(z)
    assert wave.shape == (2, 16384) and torch.isfinite(wave).all()
    loaded = load_prior(save_prior(prior, tmp_path / "vae.safetensors"))
    assert isinstance(loaded, SpecVAE) and torch.equal(loaded.magnitude(z), mag)
    with pytest.raises(ValueError, match=r"expected waveforms \[B, 16384\]"):
        prior.encode(torch.zeros(2, 8000))


def test_bundled_priors_load_by_name_offline_even_beside_a_folder_of_that_name(tmp_path, monkeypatch):
    from priorsep.priors import SpecVAE

    monkeypatch.chdir(tmp_path)
    (tmp_path / "digits").mkdir()  # a data folder named like the class must not shadow the prior
    prior = load_prior("digits")
    assert isinstance(prior, SpecVAE) and prior.name == "digits"


# --- a family defined outside the package -------------------------------------------------


@register_family("test-chirp")
class ChirpPrior(torch.nn.Module):
    """A toy family for the tests: a linear chirp whose start and end frequencies come
    from z in [-1, 1]^2, with one trainable amplitude."""

    latent_dim, sample_rate, length, latent_bound = 2, 16000, 16384, 1.0

    def __init__(self, lowest: float = 200.0, name: str = "chirp"):
        super().__init__()
        self.lowest, self.name = lowest, name
        self.amplitude = torch.nn.Parameter(torch.tensor(0.5))

    def generate(self, z):
        t = torch.arange(self.length) / self.sample_rate
        f0 = self.lowest * 2 ** (2 + 2 * z[:, :1].clamp(-1, 1))
        f1 = self.lowest * 2 ** (2 + 2 * z[:, 1:].clamp(-1, 1))
        duration = self.length / self.sample_rate
        phase = 2 * math.pi * (f0 * t + (f1 - f0) * t ** 2 / (2 * duration))
        return self.amplitude * torch.sin(phase)

    def arch_config(self):
        return {"family": "test-chirp", "lowest": self.lowest}

    @classmethod
    def from_arch_config(cls, cfg, sample_rate, name):
        return cls(lowest=float(cfg["lowest"]), name=name)


def test_a_family_registered_outside_the_package_saves_loads_and_separates(tmp_path):
    from priorsep import Separator
    from priorsep.metrics import si_sdr

    assert FAMILIES["test-chirp"] is ChirpPrior and ChirpPrior.family == "test-chirp"
    prior = ChirpPrior(lowest=150.0)
    with torch.no_grad():
        prior.amplitude.fill_(0.7)
    path = save_prior(prior, tmp_path / "chirp.safetensors", training={"note": "none"})
    loaded = load_prior(path)
    assert isinstance(loaded, ChirpPrior) and loaded.lowest == 150.0 and loaded.amplitude.item() == pytest.approx(0.7)
    assert loaded.metadata["arch"] == {"family": "test-chirp", "lowest": 150.0}
    assert not isinstance(loaded, MagnitudePrior) and not isinstance(loaded, EncodablePrior)

    burst = load_prior("burst")
    z_chirp, z_burst = torch.tensor([[-0.6, 0.4]]), torch.tensor([[0.2, -0.3, 0.5]])
    with torch.no_grad():
        chirp_src, burst_src = loaded.generate(z_chirp)[0], burst.generate(z_burst)[0]
    chirp_src, burst_src = chirp_src / chirp_src.abs().max(), burst_src / burst_src.abs().max()
    result = Separator([loaded, burst], "paper", steps=150, restarts=2).separate(chirp_src + burst_src)
    assert result.masked.shape == (2, 16384)
    assert si_sdr(chirp_src.numpy(), result.masked[0].numpy()) > 5.0


def test_registering_a_family_name_twice_is_refused():
    with pytest.raises(ValueError, match="already registered"):
        register_family("wavegan")(ChirpPrior)
    with pytest.raises(TypeError, match="no from_arch_config"):
        register_family("test-broken")(type("Broken", (), {}))


# --- saved-prior files are checked field by field --------------------------------------


def _write_raw(dst, meta_text, tensors):
    save_file(tensors, str(dst), metadata={"priorsep": meta_text})


@pytest.fixture()
def saved_tone(tmp_path):
    from safetensors import safe_open

    path = save_prior(TonePrior(), tmp_path / "tone.safetensors")
    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["priorsep"])
    return meta


@pytest.mark.parametrize("change, message", [
    (lambda m: [m], "metadata is a JSON list, not an object"),
    (lambda m: {k: v for k, v in m.items() if k != "sample_rate"}, "lacks 'sample_rate'"),
    (lambda m: {**m, "sample_rate": "16000"}, "'sample_rate' is \"16000\"; expected an integer"),
    (lambda m: {**m, "length": True}, "'length' is true; expected an integer"),
    (lambda m: {**m, "latent_dim": 0}, "'latent_dim' is 0; expected a positive integer"),
    (lambda m: {**m, "version": 99}, "format version 99 is not one this priorsep reads"),
    (lambda m: {**m, "name": " "}, "'name' is empty"),
    (lambda m: {**m, "arch": ["tone"]}, "'arch' is \\[\"tone\"\\]; expected an object"),
    (lambda m: {**m, "arch": {"length": 16384}}, "'arch' names no family"),
    (lambda m: {**m, "training": "ten minutes"}, "'training' is \"ten minutes\"; expected an object"),
    (lambda m: {**m, "format": "other"}, "unknown format 'other'"),
])
def test_malformed_metadata_is_one_clear_error(tmp_path, saved_tone, change, message):
    path = tmp_path / "bad.safetensors"
    _write_raw(path, json.dumps(change(dict(saved_tone))), {})
    with pytest.raises(PriorError, match=message):
        load_prior(path)


def test_weights_that_are_not_floats_or_not_finite_are_refused(tmp_path):
    from safetensors import safe_open

    good = save_prior(WaveGANPrior(d=2), tmp_path / "good.safetensors")
    with safe_open(str(good), framework="pt") as f:
        meta = f.metadata()["priorsep"]
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    key = next(iter(tensors))
    as_int = dict(tensors, **{key: tensors[key].to(torch.int32)})
    _write_raw(tmp_path / "int.safetensors", meta, as_int)
    with pytest.raises(PriorError, match=f"tensor '{key}' is int32; a prior's weights are floating point"):
        load_prior(tmp_path / "int.safetensors")
    nan = tensors[key].clone()
    nan.view(-1)[:3] = float("nan")
    _write_raw(tmp_path / "nan.safetensors", meta, dict(tensors, **{key: nan}))
    with pytest.raises(PriorError, match=f"tensor '{key}' holds 3 NaN or infinite values"):
        load_prior(tmp_path / "nan.safetensors")
    assert load_prior(good).latent_dim == 100  # the untouched file loads


def test_the_parametric_priors_are_named_and_described_without_torch():
    """``priorsep priors`` lists them from ``base.PARAMETRIC`` (no torch import); the
    table must say what the classes are."""
    from priorsep.priors.base import PARAMETRIC, locate_prior
    from priorsep.priors.parametric import BUILTIN

    assert set(PARAMETRIC) == set(BUILTIN)
    for name, cls in BUILTIN.items():
        assert PARAMETRIC[name] == cls.__doc__.strip().splitlines()[0]
        assert locate_prior(name) == name
    with pytest.raises(PriorError, match="no built-in prior named 'nope'"):
        locate_prior("nope")


def test_a_prior_saved_with_a_latent_density_still_loads_without_it(tmp_path):
    """Files written by the removed ``fit-density`` carry ``density.*`` tensors, an
    ``arch.density_components`` and a ``density`` record: they load as the plain prior
    (the extras ignored), with the same weights."""
    from safetensors import safe_open

    from priorsep.priors.specvae import SpecVAE

    torch.manual_seed(0)
    prior = SpecVAE(8, 2, name="x")
    plain = save_prior(prior, tmp_path / "x.safetensors", training={"steps": 3})
    with safe_open(str(plain), framework="pt") as f:
        meta = json.loads(f.metadata()["priorsep"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    meta["arch"]["density_components"] = 2
    meta["density"] = {"clips": 12, "components": 2}
    tensors.update({"density.mean": torch.zeros(2, 2), "density.log_var": torch.zeros(2, 2),
                    "density.log_weight": torch.zeros(2)})
    old = tmp_path / "old.safetensors"
    save_file(tensors, str(old), metadata={"priorsep": json.dumps(meta)})
    loaded = load_prior(old)
    assert type(loaded) is SpecVAE and not hasattr(loaded, "density")
    assert loaded.state_dict().keys() == prior.state_dict().keys()
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in prior.state_dict().items())
