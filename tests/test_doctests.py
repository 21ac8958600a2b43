"""The examples in the docstrings run, and say what they show."""

import doctest
import importlib

import pytest

MODULES = ["priorsep._lazy", "priorsep.audio", "priorsep.errors", "priorsep.fsutil", "priorsep.loss_weights",
           "priorsep.mixing", "priorsep.progress", "priorsep.priors.base", "priorsep.separate.config",
           "priorsep.separate.windows", "priorsep.separate.separator", "priorsep.separate.outputs",
           "priorsep.training.augment", "priorsep.separate.files", "priorsep.priors.score",
           "priorsep.launch", "priorsep.separate.tracks", "priorsep.listening",
           "priorsep.runtime", "priorsep.separate.results", "priorsep.separate.choose",
           "priorsep.separate.checks"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0
