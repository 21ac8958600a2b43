"""``python -m priorsep.cli``: the ``priorsep`` command."""

import sys

from . import main

sys.exit(main())
