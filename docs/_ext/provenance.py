"""Provenance badges and label discipline for refopt's theory blocks.

Every labelled theory statement on the site says where it comes from, visibly. The
statement's first body line starts with a provenance role::

    .. prf:theorem:: Quantized Adam
       :label: paper-theorem-4-5
       :nonumber:

       :prov:`paper` Theorem 4.5 of :cite:t:`tang2026quantized`.

``:prov:`paper``` (the paper, only for what it is known to state), ``:prov:`defossez```
(Défossez, Bottou, Bach and Usunier 2022) and ``:prov:`refopt``` (refopt's own result,
proven on this site) render as coloured badges linking to the provenance rule.

The extension also checks, at read time, that

* every labelled sphinx-proof block (other than ``prf:proof``) carries a ``:prov:`` role in
  its first paragraph, and that the badge matches the label's prefix (``paper-...`` ->
  ``paper``, ``defossez-...`` -> ``defossez``, ``refopt-...`` -> ``refopt``);
* labels follow the scheme ``(paper|defossez|refopt)-lowercase-words``;
* every sphinx-proof block other than ``prf:proof`` has a label (a statement without one
  could carry no badge and could not be cited from the code).

Violations are Sphinx warnings, so the ``-W`` build fails on them.

Statements from a source keep the source's own numbers: a block whose label is a key of the
``prf_fixed_numbers`` config value is unnumbered in sphinx-proof's running counter and
shows that number in its heading and in every ``:prf:ref:`` to it instead (``Theorem 4.5``
for the paper; ``Défossez Theorem 4``, with the source's name from
``prf_source_names``, for Défossez et al.). Other unnumbered blocks (``:nonumber:``) are
referred to by their title.
"""

from __future__ import annotations

import html
import re
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx_proof.directive import ElementDirective
from sphinx_proof.domain import ProofDomain
from sphinx_proof.nodes import NODE_TYPES, proof_node, unenumerable_node

logger = logging.getLogger(__name__)

#: badge kind -> (badge text, tooltip)
KINDS: dict[str, tuple[str, str]] = {
    "paper": (
        "paper",
        "Stated by Tang, Li and Zou (2026) or quoted from it by its reviewers",
    ),
    "defossez": (
        "Défossez 2022",
        "From Défossez, Bottou, Bach and Usunier, TMLR 2022 (full precision)",
    ),
    "refopt": (
        "refopt",
        "refopt's own statement, proven on this site and checked by a test",
    ),
}
LABEL_RE = re.compile(r"^(paper|defossez|refopt)(-[a-z0-9]+)+$")
PROVENANCE_DOC = "theory/index"
PROVENANCE_ANCHOR = "provenance"


class prov_badge(nodes.Inline, nodes.TextElement):
    """A provenance badge; replaced by HTML (or plain text) when the doctree is resolved."""


def prov_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """``:prov:`paper``` / ``:prov:`defossez``` / ``:prov:`refopt``` -> a badge."""
    kind = text.strip()
    if kind not in KINDS:
        msg = inliner.reporter.error(
            f":prov: must be one of {', '.join(KINDS)}; got {text!r}", line=lineno
        )
        return [inliner.problematic(rawtext, rawtext, msg)], [msg]
    node = prov_badge(rawtext, KINDS[kind][0], kind=kind)
    return [node], []


def _proof_blocks(doctree: nodes.Node) -> list[nodes.Element]:
    classes = tuple(NODE_TYPES.values()) + (unenumerable_node,)
    return list(doctree.findall(lambda n: isinstance(n, classes)))


def _user_label(node: nodes.Element) -> str | None:
    label = node.get("label", "")
    realtype = node.get("realtype", "")
    if not label or re.fullmatch(rf"{re.escape(realtype)}-\d+", label):
        return None  # sphinx-proof's automatic id: the block has no :label:
    return label


def _first_paragraph(node: nodes.Element) -> nodes.paragraph | None:
    for section in node.findall(nodes.section):
        for child in section.children:
            if isinstance(child, nodes.paragraph):
                return child
            return None
    return None


def check_blocks(app: Sphinx, doctree: nodes.document) -> None:
    """Warn about labelled blocks without a provenance badge or with a bad label."""
    env = app.env
    if not hasattr(env, "prf_titles"):
        env.prf_titles = {}
    titles = env.prf_titles
    for node in _proof_blocks(doctree):
        if isinstance(node, proof_node):
            continue
        label = _user_label(node)
        if label is None:
            logger.warning(
                "prf:%s %r has no :label:; every theory statement needs one (and a "
                "provenance badge)", node.get("realtype", "block"),
                node.get("title", "").strip(" ()"), location=node,
            )
            continue
        title = node.get("title", "").strip()
        if title.startswith("(") and title.endswith(")"):  # proof_title_format " (%t)"
            title = title[1:-1]
        titles[label] = (node.get("realtype", ""), title)
        if not LABEL_RE.match(label):
            logger.warning(
                "label %r does not follow the scheme (paper|defossez|refopt)-words "
                "(lowercase, hyphens)", label, location=node,
            )
        para = _first_paragraph(node)
        badges = list(para.findall(prov_badge)) if para is not None else []
        if not badges:
            logger.warning(
                "labelled prf:%s %r has no provenance badge: its first body line must "
                "start with :prov:`paper`, :prov:`defossez` or :prov:`refopt`",
                node.get("realtype", "block"), label, location=node,
            )
            continue
        prefix = label.split("-", 1)[0]
        kind = badges[0]["kind"]
        if prefix in KINDS and kind != prefix:
            logger.warning(
                "block %r is labelled %s-... but its badge says :prov:`%s`",
                label, prefix, kind, location=node,
            )


def merge_titles(app: Sphinx, env: Any, docnames: set[str], other: Any) -> None:
    """Parallel reads: merge the titles collected by the worker processes."""
    if not hasattr(env, "prf_titles"):
        env.prf_titles = {}
    env.prf_titles.update(getattr(other, "prf_titles", {}))


def render_badges(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Replace badges by a linked, coloured span (HTML) or ``[text]`` (other builders)."""
    is_html = app.builder.format == "html"
    for badge in list(doctree.findall(prov_badge)):
        kind = badge["kind"]
        text, tip = KINDS[kind]
        if is_html:
            uri = app.builder.get_relative_uri(docname, PROVENANCE_DOC)
            markup = (
                f'<a class="prov-link" href="{html.escape(uri)}#{PROVENANCE_ANCHOR}" '
                f'title="{html.escape(tip)}"><span class="prov prov-{kind}">'
                f"{html.escape(text)}</span></a>"
            )
            badge.replace_self(nodes.raw("", markup, format="html"))
        else:
            badge.replace_self(nodes.inline(text, f"[{text}]", classes=["prov", f"prov-{kind}"]))


def _depart_unenumerable(self, node: nodes.Element) -> None:
    """sphinx-proof's unnumbered heading, plus the paper's number when one is fixed."""
    realtyp = node.attributes.get("realtype", "")
    ident = node.attributes.get("ids", [""])[0]
    number = self.builder.config.prf_fixed_numbers.get(node.get("label", ""), "")
    heading = realtyp.title() + (f" {number}" if number else "")
    search = f'<p class="admonition-title" id="{ident}">'
    idx = max(i for i, chunk in enumerate(self.body) if chunk == search) + 1
    self.body.insert(idx, f'<span class="caption-number">{html.escape(heading)} </span>')
    self.body.append("</div>")


def _visit_unenumerable(self, node: nodes.Element) -> None:
    self.body.append(self.starttag(node, "div", CLASS="admonition"))


_original_run = ElementDirective.run


def _run_element(self):
    """sphinx-proof's directive; blocks with a fixed (source) number are not counted."""
    if self.options.get("label", "") in self.env.config.prf_fixed_numbers:
        self.options["nonumber"] = None
    return _original_run(self)


_original_resolve = ProofDomain.resolve_xref


def _resolve_xref(self, env, fromdocname, builder, typ, target, node, contnode):
    """Link text for unnumbered targets: the paper's number, else the block's title."""
    result = _original_resolve(self, env, fromdocname, builder, typ, target, node, contnode)
    if result is None or node.get("refexplicit"):
        return result
    entry = env.proof_list.get(target, {})
    if not entry.get("nonumber"):
        return result
    realtype, title = getattr(env, "prf_titles", {}).get(target, ("", ""))
    number = env.config.prf_fixed_numbers.get(target)
    if number:
        source = env.config.prf_source_names.get(target.split("-", 1)[0], "")
        text = f"{source} {realtype.title()} {number}".strip()
    elif title:
        text = title
    else:
        return result
    result.children = []
    result += nodes.inline(text, text)
    return result


def setup(app: Sphinx) -> dict[str, Any]:
    app.setup_extension("sphinx_proof")
    app.add_config_value("prf_fixed_numbers", {}, "env", types=frozenset({dict}))
    app.add_config_value("prf_source_names", {}, "env", types=frozenset({dict}))
    app.add_node(prov_badge)
    app.add_role("prov", prov_role)
    app.add_node(
        unenumerable_node,
        override=True,
        html=(_visit_unenumerable, _depart_unenumerable),
    )
    ProofDomain.resolve_xref = _resolve_xref
    ElementDirective.run = _run_element
    app.connect("doctree-read", check_blocks)
    app.connect("env-merge-info", merge_titles)
    app.connect("doctree-resolved", render_badges)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
