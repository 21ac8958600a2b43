"""The clip format every bundled prior, dataset and benchmark set uses (docs/method.md §1)."""

#: sample rate of every clip, in Hz
SAMPLE_RATE = 16000
#: samples per clip (1.024 s at 16 kHz): the length of one prior's output
CLIP_LENGTH = 16384
