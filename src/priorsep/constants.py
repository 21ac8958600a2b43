"""The clip format every bundled prior, dataset and benchmark set uses (docs/method.md §1)."""

#: sample rate of every clip, in Hz
SAMPLE_RATE = 16000
#: samples per clip (1.024 s at 16 kHz): the length of one prior's output
CLIP_LENGTH = 16384
#: the STFT (n_fft, hop) of the paper's losses and the spectral front end (docs/method.md §2)
LOSS_STFT = (256, 128)
#: the STFT (n_fft, hop) of the masks and the magnitude fit when no magnitude prior fixes one
DEFAULT_MASK_STFT = (1024, 256)
