"""The README's promises: two Quickstart commands, CI runs the second, examples are right,
the command-line examples run, and the layout table names files that exist."""

from __future__ import annotations

import doctest
import re
import subprocess
import sys
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


def test_readme_cli_examples_run():
    block = next(b for b in _fenced_blocks(README, "sh") if b.lstrip().startswith("refopt "))
    commands = [line.split("#", 1)[0].split() for line in block.splitlines()]
    commands = [c for c in commands if c]
    assert len(commands) >= 4
    for cmd in commands:
        assert cmd[0] == "refopt", cmd
        proc = subprocess.run([sys.executable, "-m", "refopt", *cmd[1:]], capture_output=True,
                              text=True, cwd=ROOT, timeout=300)
        assert proc.returncode == 0, f"{' '.join(cmd)}:\n{proc.stderr[-2000:]}"
        assert proc.stdout.strip(), " ".join(cmd)


def test_readme_layout_table_names_existing_paths():
    section = README.split("## Layout", 1)[1].split("\n## ", 1)[0]
    paths = [p for row in re.findall(r"^\| (.+?) \|", section, flags=re.M)
             for p in re.findall(r"`([^`]+)`", row)]
    assert len(paths) >= 10, paths
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert not missing, missing
    for ref in ("docs/build.sh", "CITATION.cff"):
        assert ref in README and (ROOT / ref).exists(), ref
