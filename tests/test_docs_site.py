"""The built documentation site: offline, badged, and rendering in a real browser.

The site is built once per session (``sphinx-build -W --keep-going -n -b html``, which also
executes the tutorials) into a temporary directory; when the environment variable
``REFOPT_DOCS_BUILT`` names an existing HTML build (CI builds once with ``docs/build.sh``),
that build is inspected instead.

* no built page loads a script, style sheet or font from another host;
* every labelled theory block shows its provenance badge;
* in headless Chromium (skipped only when Chromium is missing), the home page, a theory
  page and a tutorial page render their math (MathJax output, no error nodes), load their
  figures, and contain only internal links that resolve to existing files and anchors.
  External host names are unresolvable for the browser, so rendered math proves that the
  site works offline. Screenshots go to ``docs/_build/screenshots/``.
"""

from __future__ import annotations

import functools
import html.parser
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
import urllib.parse
from pathlib import Path

import pytest

pytestmark = [pytest.mark.docs, pytest.mark.xdist_group("docs")]

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "docs" / "_build" / "screenshots"
EXTERNAL = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:)?//")  # http://, https://, //host
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built HTML site (reused from ``REFOPT_DOCS_BUILT`` when set)."""
    built = os.environ.get("REFOPT_DOCS_BUILT")
    if built:
        path = Path(built).resolve()
        assert (path / "index.html").is_file(), f"REFOPT_DOCS_BUILT={built} has no index.html"
        return path
    out = tmp_path_factory.mktemp("docs") / "html"
    env = {**os.environ, "MPLBACKEND": "Agg"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-n", "-q", "-b", "html",
         str(ROOT / "docs"), str(out)],
        capture_output=True, text=True, env=env, cwd=ROOT,
    )
    assert proc.returncode == 0, f"docs build failed:\n{proc.stderr[-6000:]}"
    return out


class _Tags(html.parser.HTMLParser):
    """Collects (tag, attributes) of every start tag, and the text of <style> elements."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {k: v or "" for k, v in attrs}))
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.styles.append(data)


def parse(text: str) -> _Tags:
    parser = _Tags()
    parser.feed(text)
    return parser


CSS_URL = re.compile(r"""(?:url\(\s*['"]?|@import\s+['"])([^'")\s]+)""")


def external_resources(page: _Tags) -> list[str]:
    """src/href of scripts, style sheets, fonts and CSS url()s that point to another host."""
    found = []
    for tag, attrs in page.tags:
        if tag == "script" and EXTERNAL.match(attrs.get("src", "")):
            found.append(f"<script src={attrs['src']}>")
        if tag == "link" and EXTERNAL.match(attrs.get("href", "")):
            rel = attrs.get("rel", "")
            if rel != "canonical" and not rel.startswith("alternate"):
                found.append(f"<link rel={rel} href={attrs['href']}>")
        if tag in ("img", "iframe", "embed", "source") and EXTERNAL.match(attrs.get("src", "")):
            found.append(f"<{tag} src={attrs['src']}>")
    for css in page.styles:
        found += [u for u in CSS_URL.findall(css) if EXTERNAL.match(u)]
    return found


# ---------------------------------------------------------------------------------------
# the checker, on hand-written pages


def test_external_resource_check_sees_scripts_styles_and_fonts() -> None:
    page = parse(
        '<script src="https://cdn.example/mathjax.js"></script>'
        '<link rel="stylesheet" href="//fonts.example/css">'
        "<style>@font-face { src: url('https://fonts.example/a.woff2') }</style>"
        '<script src="_static/local.js"></script><a href="https://arxiv.org/abs/1">paper</a>'
    )
    found = external_resources(page)
    assert len(found) == 3, found
    assert external_resources(parse('<script src="_static/mathjax/tex-chtml.js"></script>')) == []


# ---------------------------------------------------------------------------------------
# the built site


def test_site_loads_nothing_from_other_hosts(site: Path) -> None:
    offenders = {}
    pages = sorted(site.rglob("*.html"))
    assert len(pages) > 10
    for path in pages:
        found = external_resources(parse(path.read_text(encoding="utf-8", errors="replace")))
        if found:
            offenders[str(path.relative_to(site))] = found
    for css in sorted(site.rglob("*.css")):
        urls = [u for u in CSS_URL.findall(css.read_text(encoding="utf-8", errors="replace"))
                if EXTERNAL.match(u)]
        if urls:
            offenders[str(css.relative_to(site))] = urls
    assert not offenders, offenders


def test_mathjax_is_served_from_the_site(site: Path) -> None:
    page = parse((site / "theory" / "framework.html").read_text(encoding="utf-8"))
    scripts = [a["src"] for t, a in page.tags if t == "script" and "src" in a]
    mathjax = [s for s in scripts if "mathjax" in s.lower()]
    assert mathjax, scripts
    for src in mathjax:
        assert (site / "theory" / src.split("?")[0]).resolve().is_file(), src


def test_labelled_blocks_show_their_badge(site: Path) -> None:
    """Every labelled sphinx-proof block on the theory pages renders a provenance badge."""
    blocks = re.compile(r'<div class="proof (?!proof)[^"]*" id="(?P<id>[a-z0-9-]+)">(?P<body>.*?)</section>', re.S)
    seen = 0
    for path in sorted((site / "theory").glob("*.html")):
        for m in blocks.finditer(path.read_text(encoding="utf-8")):
            label = m.group("id")
            if not re.match(r"^(paper|defossez|refopt)-", label):
                continue
            seen += 1
            kind = label.split("-", 1)[0]
            assert f'class="prov prov-{kind}"' in m.group("body"), f"{path.name}#{label}"
    assert seen >= 10


def test_paper_items_keep_the_papers_numbers(site: Path) -> None:
    text = (site / "theory" / "paper_theorems.html").read_text(encoding="utf-8")
    assert "Theorem 4.5 " in text and "Theorem 4.6 " in text
    framework = (site / "theory" / "framework.html").read_text(encoding="utf-8")
    assert ">Assumption 3.1<" in framework  # the :prf:ref: link text


# ---------------------------------------------------------------------------------------
# headless Chromium


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


class _Server:
    """http.server on 127.0.0.1 in a thread, recording (path, status) of every request."""

    def __init__(self, root: Path) -> None:
        log: list[tuple[str, int]] = []

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
                log.append((urllib.parse.unquote(self.path.split("?")[0]), int(code)))

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.log = log
        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(root))
        )
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> "_Server":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _browse(chromium: str, url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [
        chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
        "--virtual-time-budget=15000", "--window-size=1280,1600", *extra, url,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def _tutorial_page(site: Path) -> Path:
    pages = sorted((site / "tutorials").glob("t[0-9][0-9]_*.html"))
    assert pages, "the site has no tutorial pages"
    with_images = [p for p in pages if "<img" in p.read_text(encoding="utf-8")]
    return (with_images or pages)[0]


def _check_links(site: Path, page: Path, dom: _Tags) -> list[str]:
    """Internal hrefs of ``dom`` (the page at ``page``) that miss a file or an anchor."""
    broken = []
    ids_cache: dict[Path, set[str]] = {}
    for tag, attrs in dom.tags:
        href = attrs.get("href", "") if tag == "a" else ""
        if not href or EXTERNAL.match(href) or href.startswith(("mailto:", "javascript:", "data:")):
            continue
        url = urllib.parse.urlsplit(href)
        target = page if not url.path else (page.parent / urllib.parse.unquote(url.path)).resolve()
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            broken.append(href)
            continue
        if url.fragment and target.suffix == ".html":
            if target not in ids_cache:
                ids_cache[target] = {a["id"] for _, a in parse(target.read_text(encoding="utf-8")).tags if "id" in a}
            if urllib.parse.unquote(url.fragment) not in ids_cache[target]:
                broken.append(href)
    return broken


@pytest.mark.browser
@pytest.mark.slow
def test_pages_render_in_headless_chromium(site: Path, tmp_path: Path) -> None:
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no Chromium installed")
    pages = {
        "home": site / "index.html",
        "theory": site / "theory" / "framework.html",
        "tutorial": _tutorial_page(site),
    }
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with _Server(site) as server:
        for name, page in pages.items():
            rel = page.relative_to(site).as_posix()
            url = f"http://127.0.0.1:{server.port}/{rel}"
            dumped = _browse(chromium, url, tmp_path / f"profile-{name}", "--dump-dom")
            dom_text = dumped.stdout
            assert "<body" in dom_text, f"{name}: no DOM from Chromium:\n{dumped.stderr[-2000:]}"
            dom = parse(dom_text)
            tags = [t for t, _ in dom.tags]
            # math rendered by the site's own MathJax, without errors
            assert "mjx-merror" not in tags and "data-mjx-error" not in dom_text, name
            if name != "home":
                assert "mjx-container" in tags, f"{name}: MathJax did not render"
            # figures: every <img> was served
            images = [a["src"] for t, a in dom.tags if t == "img" and a.get("src")]
            if name == "tutorial":
                assert images, "the tutorial page shows no figure"
            served = dict(server.log)
            for src in images:
                assert not EXTERNAL.match(src), src
                path = urllib.parse.urlsplit(urllib.parse.urljoin(url, src)).path
                assert served.get(urllib.parse.unquote(path)) == 200, f"{name}: {src} not served"
            # cross-references resolve
            broken = _check_links(site, page, dom)
            assert not broken, f"{name}: broken internal links {broken[:10]}"
            # a screenshot for humans
            shot = SCREENSHOTS / f"{name}.png"
            _browse(chromium, url, tmp_path / f"profile-{name}-shot", f"--screenshot={shot}")
            assert shot.is_file() and shot.stat().st_size > 10_000, shot
        assert all(code < 400 for path, code in server.log if "mathjax" in path), server.log
