"""``python -m priorsep.cli``: the ``priorsep`` command."""

import sys

from .main import main

sys.exit(main())
