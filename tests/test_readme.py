"""The README stays a user's guide: short, its two set-up commands the ones CI runs, its links alive."""

import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAX_README_BYTES = 12_000  # measurements and their history belong in docs/results.md and benchmarks/README.md


def _read(*parts: str) -> str:
    with open(os.path.join(ROOT, *parts), encoding="utf-8") as handle:
        return handle.read()


def _two_commands() -> list[str]:
    section = _read("README.md").split("## Two commands", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip() and not line.startswith("#")]


def test_readme_is_short():
    size = os.path.getsize(os.path.join(ROOT, "README.md"))
    assert size <= MAX_README_BYTES, f"README.md is {size} bytes: move measurements to docs/results.md"


def test_ci_runs_the_readme_test_command_verbatim():
    commands = _two_commands()
    assert len(commands) == 2, commands
    demo, tests = commands
    assert "hf-forget demo" in demo and "pytest" in tests
    ci_lines = [line.strip() for line in _read(".ci", "run").splitlines()]
    assert tests.strip() in ci_lines


def test_readme_links_point_at_files_and_sections_that_exist():
    text = _read("README.md")
    headings = {re.sub(r"[^a-z0-9 -]", "", h.lower()).strip().replace(" ", "-")
                for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if target.startswith(("http://", "https://")):
            continue
        if target.startswith("#"):
            assert target[1:] in headings, target
        else:
            assert os.path.exists(os.path.join(ROOT, target.split("#", 1)[0])), target
