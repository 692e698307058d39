"""The examples in the docstrings of ``src/cellcensus`` run and print what they show."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import cellcensus


def _modules_with_examples() -> list[str]:
    names = [cellcensus.__name__]
    names += [m.name for m in pkgutil.walk_packages(cellcensus.__path__, prefix="cellcensus.")]
    finder = doctest.DocTestFinder()
    found = []
    for name in sorted(names):
        if name.endswith("__main__"):
            continue
        module = importlib.import_module(name)
        tests = finder.find(module, name, module=module)
        # modules whose every example is skipped (they need a live release) have nothing to run
        if any(not ex.options.get(doctest.SKIP) for t in tests for ex in t.examples):
            found.append(name)
    return found


MODULES = _modules_with_examples()


def test_the_examples_are_found() -> None:
    # a refactor that hides the examples from the finder must not pass silently
    assert len(MODULES) >= 6, MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in finder.find(module, name, module=module):
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted > 0
    assert result.failed == 0, f"{result.failed} doctest example(s) of {name} failed (see output)"
