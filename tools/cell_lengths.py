"""Code cells over 40 lines and code lines over 100 characters, per notebook (issue 16's reading limits).

`python tools/cell_lengths.py` prints the counts; `--list` names each long cell and line."""
import json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_CELL, MAX_LINE = 40, 100


def measure(nb_path: Path) -> tuple[list, list]:
    cells, lines = [], []
    for c in json.loads(nb_path.read_text(encoding="utf-8"))["cells"]:
        if c["cell_type"] != "code": continue
        src = "".join(c["source"]).splitlines()
        if len(src) > MAX_CELL: cells.append((c.get("id"), len(src), src[0][:60]))
        lines += [(c.get("id"), len(l), l[:60]) for l in src if len(l) > MAX_LINE]
    return cells, lines


if __name__ == "__main__":
    total_c = total_l = 0
    for nb in sorted((ROOT / "nbs").glob("*.ipynb")):
        cells, lines = measure(nb)
        total_c, total_l = total_c + len(cells), total_l + len(lines)
        if cells or lines: print(f"{nb.name:36s} cells>{MAX_CELL}: {len(cells):3d}  lines>{MAX_LINE}: {len(lines):4d}")
        if "--list" in sys.argv:
            for cid, n, head in cells: print(f"    cell {cid}: {n} lines: {head}")
            for cid, n, head in lines: print(f"    line in {cid}: {n} chars: {head}")
    print(f"total: {total_c} code cells over {MAX_CELL} lines, {total_l} code lines over {MAX_LINE} characters")
