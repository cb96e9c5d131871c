"""Scan the built docs site (`_site/`) for what a reader must never see; exit 1 listing every finding.

- Quarto-only attribute text (`{target=...}`) that mkdocs prints literally;
- an absolute path of a machine (a home, a work or temporary folder) anywhere on a page;
- a warning, a traceback or stderr text in a stored cell output;
- `show_doc(...)` source shown to the reader;
- an exported function or class of `spreid_nb` without its documentation entry (a heading with its
  name);
- a docstring of the public API (exported functions and classes, public methods of exported classes)
  whose first paragraph spans lines: `show_doc` italicises only the first line, so the rest falls
  out of the italics and a backtick span across the break shows stray asterisks;
- a table or a `###` heading of the README that the home page (index.html) does not show: the site is the
  README and more;
- a stored training log shown in full (more than a few `step k/n` lines in one output, outside a folded
  `<details>` block);
- a table that shows a `NaN` cell, or on a reproduction page (reproduce_*.html) pandas' index column (row
  headers 0, 1, 2, ...);
- cell outputs that break long lines inside words (the notebook CSS's `word-break: break-all` on output
  text, not overridden by the site's stylesheet);
- a "source" link that does not point into the repository settings.ini names (`git_url`, `branch`), at a
  file of this checkout and a line that defines the documented name (the site cannot reach GitHub to
  check the link; this checks everything the link says about this checkout).

Run after `mkdocs build`: `python tools/check_site.py [_site]`.
"""
import functools
import importlib
import importlib.util
import inspect
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ABS_PATH = re.compile(r"(?<![\w.~/-])(?:/(?:home|root|work|tmp|Users|private|mnt|opt|srv|var/folders)/[\w.-]+"
                      r"|[A-Z]:\\[\w.-]+)")
PROGRESS = re.compile(r"^\s+\S+: step \d+/\d+, ", re.M)
SHOWN_PROGRESS_LINES = 6  # more `step k/n` lines than this in one visible output: a log shown in full
BAD_OUTPUT = re.compile(r"Traceback \(most recent call last\)|\.py:\d+: \w*Warning\b|^\s*\w*Warning: ", re.M)


class _Page(HTMLParser):
    "Collects a page's visible text, its code inputs, its cell outputs (with their mime types) and heading ids."
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.text, self.inputs, self.outputs, self.ids = [], [], [], set()
        self.headings, self.tables, self.visible_outputs = [], [], {}  # cell number -> its unfolded output text
        self.sources = []  # the hrefs of its "source" links
        self._stack = []  # (tag, kind) where kind is "input", "output:<mime>", "skip", "details" or None
        self._n_out, self._heading, self._cell = 0, None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs); cls = a.get("class") or ""
        kind = None
        if tag in ("script", "style"): kind = "skip"
        elif "jp-InputArea" in cls: kind = "input"
        elif "jp-OutputArea-output" in cls:
            kind = "output:" + (a.get("data-mime-type") or "")
            self.visible_outputs[self._n_out] = self.visible_outputs.get(self._n_out, "") + "\n"  # one per line
        elif tag == "details": kind = "details"
        if tag == "a" and "doc-source" in cls: self.sources.append(a.get("href") or "")
        if "jp-Cell" in cls.split(): self._n_out += 1  # a notebook cell: its outputs count together
        if tag in ("h1", "h2", "h3", "h4"):
            if a.get("id"): self.ids.add(a["id"].lower())
            self._heading = []
        if tag == "table": self.tables.append([])  # rows of (cell tag, text)
        elif tag == "tr" and self.tables: self.tables[-1].append([])
        elif tag in ("td", "th") and self.tables and self.tables[-1]:
            self._cell = [tag, ""]; self.tables[-1][-1].append(self._cell)
        if tag not in ("br", "img", "meta", "link", "input", "hr"): self._stack.append((tag, kind))

    def handle_endtag(self, tag):
        if tag in ("h1", "h2", "h3", "h4") and self._heading is not None:
            self.headings.append(" ".join("".join(self._heading).replace("¶", "").split())); self._heading = None
        if tag in ("td", "th"): self._cell = None
        while self._stack:
            if self._stack.pop()[0] == tag: break

    def handle_data(self, data):
        kinds = [k for _, k in self._stack if k]
        if "skip" in kinds: return
        self.text.append(data)
        if self._heading is not None: self._heading.append(data)
        if self._cell is not None: self._cell[1] += data
        if "input" in kinds: self.inputs.append(data)
        outs = [k for k in kinds if k.startswith("output:")]
        if outs:
            self.outputs.append((outs[-1][len("output:"):], data))
            if "details" not in kinds:
                self.visible_outputs[self._n_out] = self.visible_outputs.get(self._n_out, "") + data


def public_api() -> dict[str, str]:
    "Exported functions and classes of every `spreid_nb` module: lower-case name -> 'module.name'."
    import spreid_nb
    pkg = Path(spreid_nb.__file__).parent
    api = {}
    for f in sorted(pkg.glob("*.py")):
        if f.stem.startswith("_"): continue
        mod = importlib.import_module(f"spreid_nb.{f.stem}")
        for name in getattr(mod, "__all__", ()):
            obj = getattr(mod, name, None)
            if (inspect.isfunction(obj) or inspect.isclass(obj)) and getattr(obj, "__module__", "") == mod.__name__:
                api[name.lower()] = f"{f.stem}.{name}"
    return api


def first_paragraph_spans_lines(obj) -> bool:
    "Whether `obj`'s docstring has a second line before its first blank line."
    lines = (inspect.getdoc(obj) or "").splitlines()
    return len(lines) > 1 and bool(lines[1].strip())


def public_members(qualname: str):
    "('module.name', object) for an exported symbol and, for a class, each public method of it."
    mod, name = qualname.split(".", 1)
    obj = getattr(importlib.import_module(f"spreid_nb.{mod}"), name)
    yield qualname, obj
    if not inspect.isclass(obj): return
    for key, v in vars(obj).items():
        if key.startswith("_"): continue
        if isinstance(v, (staticmethod, classmethod)): v = v.__func__
        if isinstance(v, property): v = v.fget
        if inspect.isfunction(v): yield f"{qualname}.{key}", v


def wrapped_docstrings(api: dict[str, str] | None = None) -> list[str]:
    "'module.name' of each public function, class or method whose docstring's summary wraps."
    api = public_api() if api is None else api
    return [q for name in api.values() for q, obj in public_members(name)
            if first_paragraph_spans_lines(obj)]


def readme_tables(readme: str) -> tuple[list[list[str]], list[str]]:
    "The header row of each Markdown table of the README, and its `###` headings."
    heads, prev = [], ""
    for line in readme.splitlines():
        if line.startswith("|") and not prev.startswith("|"):
            heads.append([c.strip() for c in line.strip().strip("|").split("|")])
        prev = line
    return heads, [line[4:].strip() for line in readme.splitlines() if line.startswith("### ")]


def _plain(md: str) -> str:
    "Markdown inline text as the page shows it: no backticks, asterisks or link targets."
    return " ".join(re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", md).replace("`", "").replace("*", "").split())


def home_page_problems(home: "_Page", readme: str) -> list[str]:
    "Tables and `###` headings of the README that the home page does not show."
    shown_heads = [[_plain(t) for _, t in table[0]] for table in home.tables if table]
    shown_headings = {_plain(h) for h in home.headings}
    heads, headings = readme_tables(readme)
    return ([f"index.html: the README's table | {' | '.join(h)} | is not on the home page"
             for h in heads if [_plain(c) for c in h] not in shown_heads]
            + [f"index.html: the README's heading {h!r} is not on the home page"
               for h in headings if _plain(h) not in shown_headings])


def table_problems(page: "_Page", index_column: bool = True) -> list[str]:
    "Tables that show a NaN cell or (`index_column`) pandas' index column."
    found = []
    for table in page.tables:
        body = [row for row in table[1:] if row]
        index = [row[0][1].strip() for row in body if row[0][0] == "th"]
        if index_column and body and len(index) == len(body) and all(i.isdigit() for i in index):
            found.append(f"a table shows pandas' index column ({', '.join(index[:3])}, ...)")
        if any(c[1].strip() in ("NaN", "nan") for row in table for c in row):
            found.append(f"a table shows NaN ({' | '.join(c[1].strip() for c in table[0])[:80]})")
    return found


def breaks_words(site: Path, pages: list[Path]) -> bool:
    "Whether output text breaks inside words: the notebook CSS's break-all, not overridden by ours."
    inline = any(re.search(r"jp-OutputArea-output pre\{[^}]*word-break:break-all", p.read_text(encoding="utf-8"))
                 for p in pages)
    ours = "".join(p.read_text(encoding="utf-8") for p in site.glob("stylesheets/*.css"))
    return inline and not re.search(r"\.jp-OutputArea-output pre\s*\{[^}]*word-break:\s*normal", ours)


@functools.cache
def source_url() -> str:
    "The prefix the docs hook (tools/mkdocs_hooks.py) gives every source link, from settings.ini."
    spec = importlib.util.spec_from_file_location("mkdocs_hooks", REPO / "tools" / "mkdocs_hooks.py")
    hooks = importlib.util.module_from_spec(spec); spec.loader.exec_module(hooks)
    return hooks._SOURCE_URL


def source_link_problems(hrefs: list[str]) -> list[str]:
    "What is wrong with a page's source links: another repository, a missing file, a line past its end."
    out, prefix = [], source_url() + "/"
    for h in hrefs:
        m = re.fullmatch(re.escape(prefix) + r"(.+)#L(\d+)", h)
        if not m: out.append(f"source link {h!r} does not point into {prefix}"); continue
        f, line = REPO / m.group(1), int(m.group(2))
        if not f.is_file(): out.append(f"source link {h!r}: no file {m.group(1)}"); continue
        lines = f.read_text(encoding="utf-8").splitlines()
        if not 1 <= line <= len(lines) or not re.match(r"\s*(@|def |class |async def |\w+\s*[:=])",
                                                      lines[line - 1]):
            out.append(f"source link {h!r}: line {line} of {m.group(1)} defines nothing")
    return out


def scan(site: Path, readme: Path | None = None) -> list[str]:
    problems, ids = [], set()
    pages = sorted(site.glob("*.html"))
    if not pages: return [f"{site}: no pages (run mkdocs build first)"]
    for page in pages:
        p = _Page(); p.feed(page.read_text(encoding="utf-8")); ids |= p.ids
        text = "".join(p.text)
        if "{target=" in text: problems.append(f"{page.name}: literal '{{target=' text ({text.count('{target=')}x)")
        for m in sorted(set(ABS_PATH.findall(text))): problems.append(f"{page.name}: absolute path {m!r}")
        if "show_doc(" in "".join(p.inputs): problems.append(f"{page.name}: show_doc(...) source shown")
        for mime, data in p.outputs:
            if mime == "application/vnd.jupyter.stderr" and data.strip():
                problems.append(f"{page.name}: stderr in a stored output: {data.strip()[:100]!r}")
            elif BAD_OUTPUT.search(data):
                problems.append(f"{page.name}: warning/traceback in a stored output: {data.strip()[:100]!r}")
        for text in p.visible_outputs.values():
            if len(PROGRESS.findall(text)) > SHOWN_PROGRESS_LINES:
                problems.append(f"{page.name}: a training log of {len(PROGRESS.findall(text))} progress lines shown "
                                "in full (collapse it to one line per run)")
        problems += [f"{page.name}: {t}" for t in table_problems(p, page.name.startswith("reproduce_"))]
        if page.name == "index.html":
            readme = readme or site.resolve().parent / "README.md"
            if readme.exists(): problems += home_page_problems(p, readme.read_text(encoding="utf-8"))
        problems += [f"{page.name}: {t}" for t in source_link_problems(p.sources)]
    if breaks_words(site, pages):
        problems.append("output text breaks inside words (word-break: break-all): set word-break: normal for "
                        ".jp-OutputArea-output pre in stylesheets/extra.css")
    api = public_api()
    for key, name in api.items():
        if key not in ids: problems.append(f"undocumented: {name} has no entry on any page")
    for name in wrapped_docstrings(api):
        problems.append("docstring's first paragraph spans lines"
                        f" (show_doc italicises only the first line): {name}")
    return problems


if __name__ == "__main__":
    site = Path(sys.argv[1] if len(sys.argv) > 1 else "_site")
    problems = scan(site)
    for p in problems: print(p)
    n_api = len(public_api())
    print(f"check_site: {len(problems)} problem(s) in {site} ({n_api} exported functions/classes checked)")
    sys.exit(1 if problems else 0)
