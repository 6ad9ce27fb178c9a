"""Code and text in step: every theory label cited anywhere is defined, and carries its badge.

Mostly sources, not the built site: the labels are read from the reStructuredText pages in
``docs/`` and the tutorials, and the citations from code comments ``# [prf:label]``,
docstrings and pages (``:prf:ref:`label``` and ``:prf:ref:`Text <label>```) across
``refopt/``, ``tutorials/`` and ``docs/``, plus string literals in the code that name a
statement (``BoundResult.reference``, ``"defossez-adam (Theorem 2)"``). The test fails on a
cited label that no page defines and on a labelled block without a provenance badge; it
reports (as a warning, and on stdout; it does not fail) the theory labels nothing in the
code or the tutorials cites yet. Every entry of ``docs/refs.bib`` must be cited somewhere.
Two small Sphinx builds check the extension that renders the badges and turns a missing
one into a warning.
"""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

pytestmark = [pytest.mark.docs, pytest.mark.xdist_group("docs")]

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
GENERATED = (DOCS / "_build", DOCS / "tutorials")  # build output, gallery output

DIRECTIVE_RE = re.compile(r"^(?P<indent>[ \t]*)\.\. prf:(?P<kind>[\w-]+)::[^\n]*$", re.M)
OPTION_RE = re.compile(r"^\s*:(?P<name>[\w-]+):\s*(?P<value>.*)$")
CITE_CODE_RE = re.compile(r"#.*?\[prf:(?P<label>[A-Za-z0-9_-]+)\]")
CITE_ROLE_RE = re.compile(r":prf:ref:`(?:[^`<]*<(?P<explicit>[^`>]+)>|(?P<plain>[^`<>]+))`")
CITE_LITERAL_RE = re.compile(
    r"""["'](?P<label>(?:paper|defossez|refopt)-(?:theorem|lemma|assumptions?|def|algorithm"""
    r"""|framework|corollary|remark|adagrad|adam)(?:-[a-z0-9]+)*)(?=["' (])"""
)
BIB_CITE_RE = re.compile(r":cite:[a-z]*:`(?P<keys>[^`]+)`")
BIB_KEY_RE = re.compile(r"^@\w+\{(?P<key>[^,\s]+),", re.M)
PROV_RE = re.compile(r":prov:`(?P<kind>[^`]*)`")
LABEL_SCHEME = re.compile(r"^(paper|defossez|refopt)(-[a-z0-9]+)+$")


def _strip_comment_prefix(text: str) -> str:
    """A sphinx-gallery script's rst text: comment lines with the ``# `` removed."""
    lines = []
    for line in text.splitlines():
        stripped = line.lstrip()
        if stripped.startswith("#"):
            lines.append(stripped[2:] if stripped.startswith("# ") else stripped[1:])
        else:
            lines.append(line)
    return "\n".join(lines)


def prf_blocks(text: str) -> list[dict]:
    """Every ``.. prf:KIND::`` directive in rst ``text``: kind, label, first body paragraph."""
    lines = text.splitlines()
    blocks = []
    for match in DIRECTIVE_RE.finditer(text):
        start = text.count("\n", 0, match.start())
        indent = len(match.group("indent").expandtabs())
        label, i = None, start + 1
        while i < len(lines) and (m := OPTION_RE.match(lines[i])) and lines[i].strip():
            if m.group("name") == "label":
                label = m.group("value").strip()
            i += 1
        body: list[str] = []
        while i < len(lines):
            line = lines[i]
            if line.strip() and len(line) - len(line.lstrip()) <= indent:
                break  # dedent: the block ended
            if line.strip():
                body.append(line.strip())
            elif body:
                break  # end of the first paragraph
            i += 1
        blocks.append({"kind": match.group("kind"), "label": label, "first": " ".join(body),
                       "line": start + 1})
    return blocks


LITERAL_RE = re.compile(r"``.+?``", re.S)


def cited_labels(text: str) -> set[str]:
    """Labels cited in ``text``: ``# [prf:label]`` comments, ``:prf:ref:`` roles, and
    string literals that start with a statement label (``"refopt-theorem-x"``,
    ``"defossez-adam (Theorem 2)"``).

    Inline literals (double backticks) are examples, not citations, and are skipped.
    """
    text = LITERAL_RE.sub("", text)
    found = {m.group("label") for m in CITE_CODE_RE.finditer(text)}
    found |= {m.group("label") for m in CITE_LITERAL_RE.finditer(text)}
    for m in CITE_ROLE_RE.finditer(text):
        found.add((m.group("explicit") or m.group("plain")).strip())
    return found


def undefined_citations(sources: dict[Path, str], defined: set[str] | dict) -> dict[str, list[str]]:
    """Cited label -> the files citing it, for every label of ``sources`` not in ``defined``."""
    missing: dict[str, list[str]] = {}
    for path, text in sources.items():
        for label in sorted(cited_labels(text)):
            if label not in defined:
                missing.setdefault(label, []).append(str(path))
    return missing


def uncited_labels(defined: set[str] | dict, sources: dict[Path, str]) -> list[str]:
    """The defined labels that no text of ``sources`` cites."""
    cited: set[str] = set()
    for text in sources.values():
        cited |= cited_labels(text)
    return sorted(label for label in defined if label not in cited)


def _is_generated(path: Path) -> bool:
    return any(g == path or g in path.parents for g in GENERATED)


def _rst_sources() -> dict[Path, str]:
    pages = {p: p.read_text(encoding="utf-8") for p in sorted(DOCS.rglob("*.rst")) if not _is_generated(p)}
    for p in sorted((ROOT / "tutorials").glob("*.py")):
        pages[p] = _strip_comment_prefix(p.read_text(encoding="utf-8"))
    return pages


def _code_sources() -> dict[Path, str]:
    files = sorted((ROOT / "refopt").rglob("*.py")) + sorted((ROOT / "tutorials").glob("*.py"))
    return {p: p.read_text(encoding="utf-8") for p in files}


def _defined() -> dict[str, tuple[Path, dict]]:
    defined: dict[str, tuple[Path, dict]] = {}
    for path, text in _rst_sources().items():
        for block in prf_blocks(text):
            if block["label"]:
                defined[block["label"]] = (path, block)
    return defined


# ---------------------------------------------------------------------------------------
# the parsers themselves, on hand-written snippets


def test_prf_blocks_finds_label_and_first_paragraph() -> None:
    text = (
        "Intro\n\n.. prf:lemma:: A title\n   :label: refopt-lemma-x\n   :nonumber:\n\n"
        "   :prov:`refopt` Our own.\n   Second line.\n\n   More body.\n\n"
        ".. prf:proof::\n\n   Trivial.\n\nAfter.\n"
    )
    blocks = prf_blocks(text)
    assert [b["kind"] for b in blocks] == ["lemma", "proof"]
    assert blocks[0]["label"] == "refopt-lemma-x"
    assert blocks[0]["first"] == ":prov:`refopt` Our own. Second line."
    assert blocks[1]["label"] is None
    assert blocks[1]["first"] == "Trivial."


def test_prf_blocks_sees_a_missing_badge() -> None:
    text = ".. prf:theorem:: T\n   :label: paper-theorem-9-9\n\n   No badge here.\n"
    (block,) = prf_blocks(text)
    assert PROV_RE.search(block["first"]) is None


def test_cited_labels_reads_all_three_forms() -> None:
    text = (
        "x = 1  # [prf:refopt-lemma-a] implements step 2\n"
        '"""See :prf:ref:`paper-theorem-4-5` and :prf:ref:`the bound <refopt-theorem-b>`."""\n'
        "y = '[prf:not-a-comment]'\n"
        "Write ``:prf:ref:`label``` to cite.\n"
    )
    assert cited_labels(text) == {"refopt-lemma-a", "paper-theorem-4-5", "refopt-theorem-b"}


def test_cited_labels_reads_string_literals_naming_a_statement() -> None:
    text = (
        'BoundResult.build(name, terms, conds, "refopt", "refopt-theorem-adam-quantized", x)\n'
        'ref = "defossez-adam (Theorem 2)"\n'
        'out = "refopt-results"  # a directory, not a label\n'
    )
    assert cited_labels(text) == {"refopt-theorem-adam-quantized", "defossez-adam"}


def test_a_bogus_label_is_reported_with_where_it_is_cited() -> None:
    """The check behind test_every_cited_label_is_defined fails on an undefined label."""
    defined = {"paper-theorem-4-5", "refopt-lemma-real"}
    sources = {
        Path("refopt/x.py"): "y = 1  # [prf:refopt-lemma-real]\nz = 2  # [prf:refopt-lemma-bogus]",
        Path("tutorials/t99.py"): _strip_comment_prefix("# See :prf:ref:`paper-theorem-9-9`.\nx = 1"),
        Path("docs/p.rst"): "By :prf:ref:`the theorem <paper-theorem-4-5>`.",
    }
    assert undefined_citations(sources, defined) == {
        "refopt-lemma-bogus": ["refopt/x.py"],
        "paper-theorem-9-9": ["tutorials/t99.py"],
    }
    assert undefined_citations({Path("a.py"): "# [prf:refopt-lemma-real]"}, defined) == {}


def test_uncited_labels_lists_what_nothing_cites() -> None:
    defined = {"paper-theorem-4-5", "refopt-lemma-a", "refopt-lemma-b"}
    sources = {Path("a.py"): "# [prf:refopt-lemma-a]",
               Path("b.py"): "see :prf:ref:`paper-theorem-4-5`"}
    assert uncited_labels(defined, sources) == ["refopt-lemma-b"]


def test_gallery_text_blocks_are_unwrapped() -> None:
    script = "# %%\n# .. prf:remark:: R\n#    :label: refopt-remark-r\n#\n#    :prov:`refopt` x\nimport os\n"
    (block,) = prf_blocks(_strip_comment_prefix(script))
    assert block["label"] == "refopt-remark-r"
    assert block["first"] == ":prov:`refopt` x"


# ---------------------------------------------------------------------------------------
# the repository


def test_every_cited_label_is_defined() -> None:
    sources = {**_code_sources(), **{p: t for p, t in _rst_sources().items() if p.suffix == ".rst"}}
    sources = {p.relative_to(ROOT): t for p, t in sources.items()}
    missing = undefined_citations(sources, _defined())
    assert not missing, "cited but not defined in docs/: " + "; ".join(
        f"{label} (in {', '.join(sorted(set(where)))})" for label, where in sorted(missing.items())
    )


def test_labelled_blocks_carry_a_matching_provenance_badge() -> None:
    problems = []
    for path, text in _rst_sources().items():
        for block in prf_blocks(text):
            if block["kind"] == "proof":
                continue
            where = f"{path.relative_to(ROOT)}:{block['line']} ({block['label']})"
            if not block["label"]:
                problems.append(f"{where}: prf:{block['kind']} without a :label:")
                continue
            if not LABEL_SCHEME.match(block["label"]):
                problems.append(f"{where}: label outside the scheme (paper|defossez|refopt)-words")
            badge = PROV_RE.search(block["first"])
            if badge is None or not block["first"].startswith(":prov:"):
                problems.append(f"{where}: first body line is not a :prov: badge")
            elif badge.group("kind") != block["label"].split("-", 1)[0]:
                problems.append(f"{where}: badge :prov:`{badge.group('kind')}` does not match the label")
    assert not problems, "\n".join(problems)


def test_the_core_theory_labels_exist() -> None:
    defined = _defined()
    for label in ("paper-framework", "paper-assumption-3-1", "paper-assumptions-4",
                  "paper-theorem-4-5", "paper-theorem-4-6", "refopt-algorithm-adam-analysed",
                  "refopt-algorithm-adam-practical", "refopt-algorithm-muon", "refopt-def-msign"):
        assert label in defined, label


def test_list_theory_labels_nothing_cites(capsys: pytest.CaptureFixture[str]) -> None:
    """Informational: labels defined on the theory pages that no code or tutorial cites.

    Printed, and raised as a warning so that it also shows in the warnings summary of a
    parallel (xdist) run, whose workers' output is not shown.
    """
    uncited = uncited_labels(_defined(), _code_sources())
    report = (f"{len(uncited)} theory label(s) not cited by refopt/ or tutorials/"
              + "".join(f"\n  {label}" for label in uncited))
    with capsys.disabled():
        print(f"\n[docs] {report}")
    if uncited:
        warnings.warn(report, UserWarning, stacklevel=1)


def test_every_bibliography_entry_is_cited_and_every_citation_exists() -> None:
    keys = set(BIB_KEY_RE.findall((DOCS / "refs.bib").read_text(encoding="utf-8")))
    cited: dict[str, set[str]] = {}
    texts = {**_rst_sources(), **_code_sources()}
    for path, text in texts.items():
        for m in BIB_CITE_RE.finditer(LITERAL_RE.sub("", text)):
            for key in m.group("keys").split(","):
                cited.setdefault(key.strip(), set()).add(str(path.relative_to(ROOT)))
    assert not set(cited) - keys, {k: cited[k] for k in set(cited) - keys}
    assert not keys - set(cited), f"in docs/refs.bib but cited nowhere: {sorted(keys - set(cited))}"


# ---------------------------------------------------------------------------------------
# the Sphinx extension that renders and enforces the badges (docs/_ext/provenance.py)

_GOOD = """
Page
====

.. prf:theorem:: Quantized Adam
   :label: paper-theorem-4-5

   :prov:`paper` Theorem 4.5.

.. prf:theorem:: Adam with momentum
   :label: defossez-adam-momentum

   :prov:`defossez` Their Theorem 4.

.. prf:lemma:: Ours
   :label: refopt-lemma-ours

   :prov:`refopt` A lemma of refopt's.

See :prf:ref:`paper-theorem-4-5`, :prf:ref:`defossez-adam-momentum` and
:prf:ref:`refopt-lemma-ours`.
"""

_BAD = """
Page
====

.. prf:lemma:: No badge
   :label: refopt-lemma-nobadge

   Just text.

.. prf:lemma:: Wrong badge
   :label: refopt-lemma-wrongbadge

   :prov:`paper` Claimed for the paper.

.. prf:lemma:: Bad label
   :label: Lemma_Two

   :prov:`refopt` Fine badge.

.. prf:remark:: No label

   :prov:`refopt` A statement nobody can cite.

A bad kind: :prov:`somebody`.
"""


def _mini_build(tmp_path: Path, page: str) -> tuple[int, str, Path]:
    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(DOCS / '_ext')!r})\n"
        "extensions = ['sphinx_proof', 'provenance']\n"
        "prf_fixed_numbers = {'paper-theorem-4-5': '4.5', 'defossez-adam-momentum': '4'}\n"
        "prf_source_names = {'defossez': 'Défossez'}\n",
        encoding="utf-8",
    )
    (src / "index.rst").write_text(page, encoding="utf-8")
    out = tmp_path / "html"
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-q", "-b", "html", str(src), str(out)],
        capture_output=True, text=True,
    )
    return proc.returncode, proc.stderr, out


def test_extension_renders_badges_and_paper_numbers(tmp_path: Path) -> None:
    code, err, out = _mini_build(tmp_path, _GOOD)
    assert code == 0 and "WARNING" not in err, err
    html = (out / "index.html").read_text(encoding="utf-8")
    assert 'class="prov prov-paper"' in html and 'class="prov prov-refopt"' in html
    assert "Theorem 4.5 </span>" in html  # the block's heading keeps the paper's number
    assert ">Theorem 4.5<" in html  # and so does the link to it
    assert "Theorem 4 </span>" in html and ">Défossez Theorem 4<" in html
    assert ">Lemma 1<" in html  # refopt's own statements keep sphinx-proof's counter
    assert ">Theorem 1<" not in html  # sources' statements do not use the counter


def test_extension_warns_about_missing_wrong_and_unknown_badges(tmp_path: Path) -> None:
    code, err, _ = _mini_build(tmp_path, _BAD)
    assert "'refopt-lemma-nobadge' has no provenance badge" in err, err
    assert "'refopt-lemma-wrongbadge' is labelled refopt-... but its badge says :prov:`paper`" in err
    assert "'Lemma_Two' does not follow the scheme" in err
    assert ":prov: must be one of paper, defossez, refopt; got 'somebody'" in err
    assert "prf:remark 'No label' has no :label:" in err
