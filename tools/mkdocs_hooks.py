"""mkdocs hooks: render nbdev notebooks as a reader should see them.

mkdocs-jupyter has no notion of nbdev directives, so this hook wraps its cell-slicing preprocessor:
- a raw front-matter cell (`---` ... `---`, e.g. nbdev's `skip_exec`) is dropped,
- a code cell with `#| hide` (or only directive lines / nothing left) is dropped entirely,
- a code cell with `#| echo: false` keeps its output but hides its source,
- every other `#| ...` directive line is removed from the shown source,
- after each `#| export` cell, every public function and class it defines is documented (signature with
  docments, docstring, a link to its source), as `nbdev_docs` does; a cell that only calls `show_doc` is
  replaced by the documentation it asks for, rendered at build time (its source is not shown);
- a stored training log (a reproduction's runs, many `step k/n` lines) is collapsed to its plan lines, one
  line per run and the last progress line; the whole log follows, folded, in a `<details>` block.
The page's table of contents is built by mkdocs-jupyter from a separate markdown conversion of the notebook;
a leading front-matter block is stripped there too (else `skip_exec: true` + `---` reads as a heading).
"""
import ast
import html
import importlib
import inspect
import re
from pathlib import Path

import nbformat
from mkdocs_jupyter import plugin, preprocessors

_DIRECTIVE = re.compile(r"^\s*#\s*\|\s*(.*)$")
_SHOW_DOC = re.compile(r"^\s*show_doc\((.+)\)\s*$")
_original = preprocessors.SubCell.preprocess
_REPO = Path(__file__).resolve().parents[1]


def _settings_source_url() -> str:
    "The repository's file URL prefix from settings.ini (`git_url`/blob/`branch`): one place to change."
    import configparser
    c = configparser.ConfigParser(); c.read(_REPO / "settings.ini")
    return f"{c['DEFAULT']['git_url'].rstrip('/')}/blob/{c['DEFAULT']['branch']}"


_SOURCE_URL = _settings_source_url()


def _source_link(obj) -> str:
    "An HTML link to `obj`'s source lines in the repository ('' where they cannot be found)."
    try:
        obj = inspect.unwrap(getattr(obj, "fget", obj))
        path = Path(inspect.getsourcefile(obj)).resolve()
        line = inspect.getsourcelines(obj)[1]
        rel = path.relative_to(_REPO).as_posix()
    except (TypeError, OSError, ValueError):
        return ""
    return f'<a class="doc-source" href="{_SOURCE_URL}/{rel}#L{line}" target="_blank">source</a>\n\n'


def _doc_markdown(obj) -> str:
    "nbdev's `show_doc` markdown for `obj`, with our source link in place of its Quarto-only attribute syntax."
    from nbdev.showdoc import show_doc
    doc = getattr(obj, "__doc__", None)
    # each paragraph on one line (show_doc italicises line 1, so the summary must be all of it)
    flat = ("\n\n".join(" ".join(p.split()) for p in re.split(r"\n\s*\n", doc.strip()))
            if isinstance(doc, str) else doc)
    try: obj.__doc__ = flat
    except (AttributeError, TypeError): pass
    try: md = show_doc(obj)._repr_markdown_()
    finally:
        try: obj.__doc__ = doc
        except (AttributeError, TypeError): pass
    md = re.sub(r"^\s*---\s*\n", "", md)  # nbdev's rule above each entry
    md = re.sub(r"\[source\]\([^)]*\)\{[^}]*\}\s*\n", "", md)
    return _source_link(obj) + md


def _module_of(nb) -> str | None:
    for cell in nb.cells:
        for line in cell.source.splitlines():
            m = _DIRECTIVE.match(line)
            if m and m.group(1).startswith("default_exp"):
                return "spreid_nb." + m.group(1).split()[1]
    return None


def _patched(n) -> str | None:
    "`Class.name` of a fastcore `@patch` method (its first argument annotated with the class), else None."
    if not any(ast.unparse(d) == "patch" for d in getattr(n, "decorator_list", [])): return None
    a0 = n.args.args[0] if n.args.args else None
    return f"{ast.unparse(a0.annotation)}.{n.name}" if a0 is not None and a0.annotation else None


def _exported(body: str) -> list[str]:
    "Public functions and classes a cell defines at top level (`Class.name` for a `@patch` method)."
    try: tree = ast.parse(body)
    except SyntaxError: return []
    return [_patched(n) or n.name for n in tree.body
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and not n.name.startswith("_")]


def _doc_cells(module, names_or_exprs: list[str], documented: set) -> list:
    cells = []
    for expr in names_or_exprs:
        if expr in documented: continue  # already shown under its `#| export` cell
        obj = eval(expr, vars(module))  # our own notebook's expression, e.g. `ReidData.query`
        cells.append(nbformat.v4.new_markdown_cell(_doc_markdown(obj)))
        documented.add(expr)
    return cells


_PROGRESS = re.compile(r"^\s+\S+: (step \d+/\d+, |evaluating: \d+/\d+ images, |\d+/\d+ images, )")
_RUN_START = re.compile(r"^\[\d+/\d+\] \S+: \d+ steps, about ")
COLLAPSE_OVER = 6  # progress lines in one cell's stored output above which the log is collapsed


def collapse_log(text: str) -> str | None:
    "A training log's plan lines, one line per run and the last progress line; None if it is short."
    lines = [l for l in text.splitlines() if l.strip()]
    progress = [i for i, l in enumerate(lines) if _PROGRESS.match(l)]
    if len(progress) <= COLLAPSE_OVER: return None
    keep = [l for i, l in enumerate(lines)
            if not _PROGRESS.match(l) and not _RUN_START.match(l) or i == progress[-1]]
    return "\n".join(keep) + f"\n({len(lines) - len(keep)} progress lines folded below)\n"


def _collapse_outputs(cell):
    "Collapse a cell's stdout when it is a long training log; the whole log follows, folded."
    streams = [o for o in cell.get("outputs", []) if o.get("output_type") == "stream" and o.get("name") == "stdout"]
    text = "".join(o.get("text", "") for o in streams)
    short = collapse_log(text) if streams else None
    if short is None: return
    n = len([l for l in text.splitlines() if l.strip()])
    full = nbformat.v4.new_output("display_data", data={"text/html": (
        f"<details><summary>the whole log ({n} lines)</summary><pre>{html.escape(text)}</pre></details>")})
    first = cell.outputs.index(streams[0])
    rest = [o for o in cell.outputs if o not in streams]
    cell.outputs = rest[:first] + [nbformat.v4.new_output("stream", name="stdout", text=short), full] + rest[first:]


def _clean(nb):
    modname = _module_of(nb)
    module = importlib.import_module(modname) if modname else None
    public = set(getattr(module, "__all__", ())) if module else set()
    documented, cells = set(), []
    for cell in nb.cells:
        if cell.cell_type == "raw" and cell.source.lstrip().startswith("---"):
            continue  # nbdev front matter (e.g. skip_exec), not for readers
        if cell.cell_type != "code":
            cells.append(cell); continue
        lines = cell.source.splitlines()
        directives = [m.group(1).strip() for m in map(_DIRECTIVE.match, lines) if m]
        body = "\n".join(l for l in lines if not _DIRECTIVE.match(l)).strip("\n")
        calls = [_SHOW_DOC.match(l) for l in body.splitlines()]
        if module is not None and body and all(calls):
            cells += _doc_cells(module, [m.group(1).strip() for m in calls], documented); continue
        if any(d.startswith(("hide", "include: false")) for d in directives):
            continue
        if any(d.replace(" ", "") == "echo:false" for d in directives):
            cell.metadata["transient"] = {"remove_source": True}  # what nbconvert's templates read
        elif not body and not cell.get("outputs"):
            continue
        cell.source = body
        _collapse_outputs(cell)
        cells.append(cell)
        if module is not None and any(d.split()[0] in ("export", "exports") for d in directives if d):
            cells += _doc_cells(module, [n for n in _exported(body) if n in public or "." in n],
                                documented)  # "." : a @patch method, `Class.name`
    nb.cells = cells
    return nb


def _preprocess(self, nb, resources):
    nb, resources = _original(self, nb, resources)
    return _clean(nb), resources


preprocessors.SubCell.preprocess = _preprocess

_FRONT_MATTER = re.compile(r"\A\s*---\n.*?\n---\s*\n", re.S)
_markdown_toc = plugin._get_markdown_toc


def _toc_without_front_matter(markdown_source, toc_depth):
    return _markdown_toc(_FRONT_MATTER.sub("", markdown_source, count=1), toc_depth)


plugin._get_markdown_toc = _toc_without_front_matter
