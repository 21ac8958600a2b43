"""``python -m priorsep.cli``: the ``priorsep`` command."""

from .main import command

command()
