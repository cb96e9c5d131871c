"""mkdocs hooks: render nbdev notebooks as a reader should see them.

mkdocs-jupyter has no notion of nbdev directives, so this hook wraps its cell-slicing preprocessor:
- a raw front-matter cell (`---` ... `---`, e.g. nbdev's `skip_exec`) is dropped,
- a code cell with `#| hide` (or only directive lines / nothing left) is dropped entirely,
- a code cell with `#| echo: false` keeps its output but hides its source,
- every other `#| ...` directive line is removed from the shown source.
The page's table of contents is built by mkdocs-jupyter from a separate markdown conversion of the notebook;
a leading front-matter block is stripped there too (else `skip_exec: true` + `---` reads as a heading).
"""
import re

from mkdocs_jupyter import plugin, preprocessors

_DIRECTIVE = re.compile(r"^\s*#\s*\|\s*(.*)$")
_original = preprocessors.SubCell.preprocess


def _clean(nb):
    cells = []
    for cell in nb.cells:
        if cell.cell_type == "raw" and cell.source.lstrip().startswith("---"):
            continue  # nbdev front matter (e.g. skip_exec), not for readers
        if cell.cell_type != "code":
            cells.append(cell); continue
        lines = cell.source.splitlines()
        directives = [m.group(1).strip() for m in map(_DIRECTIVE.match, lines) if m]
        if any(d.startswith(("hide", "include: false")) for d in directives):
            continue
        body = "\n".join(l for l in lines if not _DIRECTIVE.match(l)).strip("\n")
        if any(d.replace(" ", "") == "echo:false" for d in directives):
            cell.metadata["transient"] = {"remove_source": True}  # what nbconvert's templates read
        elif not body and not cell.get("outputs"):
            continue
        cell.source = body
        cells.append(cell)
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
