"""Release checks on the shipped weights: what a test should not pin, checked before a release.

For every prior bundled in the package (``src/priorsep/priors/bundled/``): it loads by
name, its file is at most 8 MB, and its model card (``.md``) and samples (``.png``) lie
beside it. Prints one line per prior (name, family, size, training steps and minutes) and
exits with status 1 when a check fails.

    .venv/bin/python scripts/check_release.py
"""

from __future__ import annotations

import sys

from priorsep.priors import bundled_priors, load_prior
from priorsep.priors.base import steps_and_time

LIMIT = 8_000_000  # bytes per weights file


def main() -> int:
    problems = []
    for name, path in sorted(bundled_priors().items()):
        size = path.stat().st_size
        prior = load_prior(name)
        training = prior.metadata.get("training", {})
        print(f"{name:22} {training.get('family', '?'):8} {size / 1e6:5.1f} MB  {', '.join(steps_and_time(training))}")
        if size > LIMIT:
            problems.append(f"{name}: {size / 1e6:.1f} MB, over {LIMIT / 1e6:.0f} MB")
        for suffix in (".md", ".png"):
            if not path.with_suffix(suffix).is_file():
                problems.append(f"{name}: no {suffix} beside it (the model card)")
    for line in problems:
        print(f"check_release: {line}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
