"""The built documentation site: offline, badged, and rendering in a real browser.

The site is built once per session (``sphinx-build -W --keep-going -n -b html``, which also
executes the tutorials) into a temporary directory; when the environment variable
``REFOPT_DOCS_BUILT`` names an existing HTML build (CI builds once with ``docs/build.sh``),
that build is inspected instead.

* no built page loads a script, style sheet or font from another host;
* every labelled theory block shows its provenance badge;
* in headless Chromium (skipped only when Chromium is missing), the home page, two theory
  pages (one with figures) and a tutorial page render their math (MathJax output, no error nodes), load their
  figures, and contain only internal links that resolve to existing files and anchors.
  External host names are unresolvable for the browser, so rendered math proves that the
  site works offline; in addition Chromium's network log must show that the pages asked
  no other host for anything (a lazily loaded script would not break the rendering, but
  it would show there). Screenshots go to ``docs/_build/screenshots/``.
* the same check fails when the site's MathJax cannot be loaded (a run with the
  ``_static/mathjax`` directory withheld by the server), so it cannot pass vacuously.
"""

from __future__ import annotations

import functools
import html.parser
import http.server
import json
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


@pytest.fixture(scope="session")
def chromium() -> str:
    """Path of a Chromium binary; skips the test when none is installed."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Chromium installed")


class _Server:
    """http.server on 127.0.0.1 in a thread, recording (path, status) of every request.

    Paths starting with one of ``withhold`` are answered 404 (to test the checks' failure).
    """

    def __init__(self, root: Path, withhold: tuple[str, ...] = ()) -> None:
        log: list[tuple[str, int]] = []

        class Handler(http.server.SimpleHTTPRequestHandler):
            def send_head(self):  # noqa: ANN202 - the base class's signature
                if withhold and urllib.parse.unquote(self.path).startswith(withhold):
                    self.send_error(404)
                    return None
                return super().send_head()

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


def page_requests(netlog: str, origin: str) -> list[str]:
    """URLs of the requests a page at ``origin`` started, from a Chromium ``--log-net-log``.

    Chromium's own background traffic has no page initiator and is not counted. A log cut
    short (Chromium killed) is closed before parsing.
    """
    try:
        log = json.loads(netlog)
    except json.JSONDecodeError:
        log = json.loads(netlog.rstrip().rstrip(",") + "]}")
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        e["params"]["url"] for e in log.get("events", [])
        if e.get("type") == start and e.get("params", {}).get("initiator", "").startswith(origin)
    ]


def render_problems(name: str, dom_text: str, *, math: bool, figure: bool) -> list[str]:
    """What is wrong with the rendered DOM of a page: MathJax errors or no MathJax output
    (when the page has ``math``), no image (when it should show a ``figure``)."""
    dom = parse(dom_text)
    tags = [t for t, _ in dom.tags]
    problems = []
    if "<body" not in dom_text:
        return [f"{name}: no DOM from Chromium"]
    if "mjx-merror" in tags or "data-mjx-error" in dom_text:
        problems.append(f"{name}: MathJax reported an error")
    if math and "mjx-container" not in tags:
        problems.append(f"{name}: MathJax did not render")
    if figure and not any(t == "img" and a.get("src") for t, a in dom.tags):
        problems.append(f"{name}: the page shows no figure")
    return problems


def test_render_problems_sees_missing_math_errors_and_figures() -> None:
    ok = ('<html><body><mjx-container class="MathJax">x</mjx-container>'
          '<img src="a.png"></body></html>')
    assert render_problems("p", ok, math=True, figure=True) == []
    raw = "<html><body><p>\\(x^2\\)</p></body></html>"  # MathJax never ran
    assert render_problems("p", raw, math=True, figure=False) == ["p: MathJax did not render"]
    err = '<html><body><mjx-container><mjx-merror data-mjx-error="Undefined">'
    assert render_problems("p", err + "</mjx-merror></mjx-container></body></html>",
                           math=True, figure=False) == ["p: MathJax reported an error"]
    assert render_problems("p", "<html><body></body></html>", math=False, figure=True) == [
        "p: the page shows no figure"]


def test_page_requests_keeps_only_what_the_page_asked_for() -> None:
    site = "http://127.0.0.1:9"
    log = {"constants": {"logEventTypes": {"URL_REQUEST_START_JOB": 7, "OTHER": 1}}, "events": [
        {"type": 7, "params": {"url": f"{site}/a.js", "initiator": site}},
        {"type": 7, "params": {"url": "https://cdn.example/m.js", "initiator": site}},
        {"type": 7, "params": {"url": "https://update.example/", "initiator": "not an origin"}},
        {"type": 1, "params": {"url": f"{site}/b.js", "initiator": site}},
    ]}
    text = json.dumps(log)
    want = ["http://127.0.0.1:9/a.js", "https://cdn.example/m.js"]
    assert page_requests(text, "http://127.0.0.1:9") == want
    assert page_requests(text[: text.rindex("]}")] + ",", "http://127.0.0.1:9") == want  # cut short


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
def test_pages_render_in_headless_chromium(site: Path, chromium: str, tmp_path: Path) -> None:
    pages = {
        "home": site / "index.html",
        "theory": site / "theory" / "framework.html",
        "tutorial": _tutorial_page(site),
        "reviewers": site / "theory" / "reviewers.html",  # a theory page with figures
    }
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with _Server(site) as server:
        origin = f"http://127.0.0.1:{server.port}"
        for name, page in pages.items():
            url = f"{origin}/{page.relative_to(site).as_posix()}"
            netlog = tmp_path / f"netlog-{name}.json"
            dumped = _browse(chromium, url, tmp_path / f"profile-{name}", "--dump-dom",
                             f"--log-net-log={netlog}")
            # math rendered by the site's own MathJax, without errors; the tutorial shows figures
            problems = render_problems(name, dumped.stdout, math=name != "home",
                                       figure=name in ("tutorial", "reviewers"))
            assert not problems, f"{problems}\n{dumped.stderr[-2000:]}"
            dom = parse(dumped.stdout)
            # nothing requested from another host, and the site's MathJax was requested
            requested = page_requests(netlog.read_text(encoding="utf-8"), origin)
            assert requested, f"{name}: no page requests in Chromium's network log"
            assert [u for u in requested if not u.startswith(origin + "/")] == [], name
            if name != "home":
                assert any("/_static/mathjax/" in u for u in requested), requested
            # figures: every <img> was served
            served = dict(server.log)
            for src in [a["src"] for t, a in dom.tags if t == "img" and a.get("src")]:
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


@pytest.mark.browser
@pytest.mark.slow
def test_the_math_check_fails_when_mathjax_cannot_load(
    site: Path, chromium: str, tmp_path: Path
) -> None:
    """The same page with the site's MathJax withheld: the render check must object."""
    with _Server(site, withhold=("/_static/mathjax/",)) as server:
        url = f"http://127.0.0.1:{server.port}/theory/framework.html"
        dumped = _browse(chromium, url, tmp_path / "profile", "--dump-dom")
        withheld = [path for path, code in server.log if code == 404]
        assert any(path.startswith("/_static/mathjax/") for path in withheld), server.log
    assert render_problems("theory", dumped.stdout, math=True, figure=False) == [
        "theory: MathJax did not render"]
