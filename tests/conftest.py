"""Test-wide settings."""

import torch

# The tests' tensors are small: torch's intra-op thread pool only adds overhead, and on a
# loaded 2-core machine (CI beside other work) its spinning threads made convolutions and
# elementwise ops 10-40x slower. One thread keeps the suite's time predictable.
torch.set_num_threads(1)
