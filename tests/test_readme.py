"""The README's promises: two Quickstart commands, CI runs the second, examples are right."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _fenced_blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


def _quickstart_commands() -> list[str]:
    section = README.split("## Quickstart", 1)[1]
    block = _fenced_blocks(section, "sh")[0]
    return [line for line in block.splitlines() if line.strip()]


def test_quickstart_is_first_section_with_exactly_two_commands():
    headings = re.findall(r"^## (.+)$", README, flags=re.M)
    assert headings[0] == "Quickstart"
    commands = _quickstart_commands()
    assert len(commands) == 2
    assert "refopt reproduce" in commands[0]
    assert "pytest" in commands[1] and ".[test]" in commands[1]


def test_ci_runs_the_readme_test_command_verbatim():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert _quickstart_commands()[1] in ci.splitlines()


def test_readme_python_examples_are_correct():
    block = _fenced_blocks(README, "python")[0]
    parser = doctest.DocTestParser()
    test = parser.get_doctest(block, {}, "README", "README.md", 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.attempted >= 5
    assert result.failed == 0
