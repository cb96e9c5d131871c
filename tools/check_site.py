"""Scan the built docs site (`_site/`) for what a reader must never see; exit 1 listing every finding.

- Quarto-only attribute text (`{target=...}`) that mkdocs prints literally;
- an absolute path of a machine (a home, a work or temporary folder) anywhere on a page;
- a warning, a traceback or stderr text in a stored cell output;
- `show_doc(...)` source shown to the reader;
- an exported function or class of `spreid_nb` without its documentation entry (a heading with its
  name);
- a docstring of the public API (exported functions and classes, public methods of exported classes)
  whose first paragraph spans lines: `show_doc` italicises only the first line, so the rest falls
  out of the italics and a backtick span across the break shows stray asterisks.

Run after `mkdocs build`: `python tools/check_site.py [_site]`.
"""
import importlib
import inspect
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

ABS_PATH = re.compile(r"(?<![\w.~/-])(?:/(?:home|root|work|tmp|Users|private|mnt|opt|srv|var/folders)/[\w.-]+"
                      r"|[A-Z]:\\[\w.-]+)")
BAD_OUTPUT = re.compile(r"Traceback \(most recent call last\)|\.py:\d+: \w*Warning\b|^\s*\w*Warning: ", re.M)


class _Page(HTMLParser):
    "Collects a page's visible text, its code inputs, its cell outputs (with their mime types) and heading ids."
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.text, self.inputs, self.outputs, self.ids = [], [], [], set()
        self._stack = []  # (tag, kind) where kind is "input", "output:<mime>", "skip" or None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs); cls = a.get("class") or ""
        kind = None
        if tag in ("script", "style"): kind = "skip"
        elif "jp-InputArea" in cls: kind = "input"
        elif "jp-OutputArea-output" in cls: kind = "output:" + (a.get("data-mime-type") or "")
        if tag in ("h1", "h2", "h3", "h4") and a.get("id"): self.ids.add(a["id"].lower())
        if tag not in ("br", "img", "meta", "link", "input", "hr"): self._stack.append((tag, kind))

    def handle_endtag(self, tag):
        while self._stack:
            if self._stack.pop()[0] == tag: break

    def handle_data(self, data):
        kinds = [k for _, k in self._stack if k]
        if "skip" in kinds: return
        self.text.append(data)
        if "input" in kinds: self.inputs.append(data)
        outs = [k for k in kinds if k.startswith("output:")]
        if outs: self.outputs.append((outs[-1][len("output:"):], data))


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


def scan(site: Path) -> list[str]:
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
