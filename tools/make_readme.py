"""Write README.md from nbs/index.ipynb (nbdev_readme needs Quarto, which cannot be installed here).

Markdown cells are copied as they are; a code cell whose source saves or shows a PNG under ../figures/
becomes an image link to that file, and one that reads a ../figures/*.md table inlines it; other code cells
are left out. `--check` fails if README.md would change.
"""
import json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def render(nb_path: Path = ROOT / "nbs" / "index.ipynb") -> str:
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    parts = []
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            parts.append(src.strip())
        elif cell["cell_type"] == "code":
            for fig in re.findall(r"""(?:savefig\(|filename=)\s*["']\.\./(figures/[\w.-]+\.png)["']""", src):
                parts.append(f"![{Path(fig).stem}]({fig})")
            for md in re.findall(r"""Path\(\s*["']\.\./(figures/[\w.-]+\.md)["']""", src):
                if (ROOT / md).exists(): parts.append((ROOT / md).read_text(encoding="utf-8").strip())
    head = "<!-- generated from nbs/index.ipynb by tools/make_readme.py: edit the notebook -->"
    return head + "\n\n" + "\n\n".join(p for p in parts if p) + "\n"


if __name__ == "__main__":
    text, readme = render(), ROOT / "README.md"
    if "--check" in sys.argv:
        if not readme.exists() or readme.read_text(encoding="utf-8") != text:
            sys.exit("README.md is out of date with nbs/index.ipynb: run `python tools/make_readme.py`")
    else:
        readme.write_text(text, encoding="utf-8")
