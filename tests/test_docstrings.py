"""Every example in the library's docstrings runs and prints what it says (HF-style ```python fences allowed)."""

import doctest
import importlib
import pkgutil
import re

import pytest

import hf_forget

_FENCE = re.compile(r"^[ \t]*```[a-z]*[ \t]*$", re.MULTILINE)


class FencedDocTestParser(doctest.DocTestParser):
    """Reads ``>>>`` examples inside Markdown fences: a fence line ends the expected output like a blank line."""

    def parse(self, string, name="<string>"):
        return super().parse(_FENCE.sub("", string), name)


def _modules_with_examples() -> list[str]:
    names = []
    for info in pkgutil.walk_packages(hf_forget.__path__, prefix="hf_forget."):
        spec = importlib.util.find_spec(info.name)
        if spec and spec.origin and spec.origin.endswith(".py"):
            with open(spec.origin, encoding="utf-8") as handle:
                if ">>> " in handle.read():
                    names.append(info.name)
    return names


MODULES = _modules_with_examples()


def test_the_library_has_docstring_examples():
    assert len(MODULES) >= 5, MODULES  # the finder below must not silently find nothing


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples_run(module_name):
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder(parser=FencedDocTestParser())
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    tests = [t for t in finder.find(module, module_name) if t.examples]
    assert tests, f"{module_name} mentions '>>> ' but no example was found"
    for test in tests:
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {module_name}"


def test_a_closing_fence_is_not_expected_output():
    test = FencedDocTestParser().get_doctest("```python\n>>> 1 + 1\n2\n```\n", {}, "example", None, 0)
    assert [(e.source, e.want) for e in test.examples] == [("1 + 1\n", "2\n")]
