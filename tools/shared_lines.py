"""How much code the reproduction notebooks share: lines found in four or more of them, over all their code lines.

A line counts once per notebook it is in (stripped of surrounding whitespace; blank lines and lines that are
only a comment are skipped). It is *shared* when the identical stripped line occurs in at least `--min`
(default 4) of the `nbs/reproduce_*.ipynb` notebooks. Issue #16 asked for at most 10%.

    python tools/shared_lines.py                 # this checkout
    python tools/shared_lines.py --rev main      # the notebooks as committed on `main`, beside this checkout

The papermill `parameters` cell is the interface papermill reads, identical by design in every notebook;
the second number leaves it out.
"""
import argparse
import json
import subprocess
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def code_lines(nb: dict, parameters: bool = True) -> list[str]:
    "The stripped, non-blank, non-comment lines of a notebook's code cells."
    out = []
    for c in nb["cells"]:
        if c["cell_type"] != "code": continue
        if not parameters and "parameters" in c.get("metadata", {}).get("tags", []): continue
        src = "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        out += [s for s in (line.strip() for line in src.splitlines()) if s and not s.startswith("#")]
    return out


def notebooks(rev: str | None) -> dict[str, dict]:
    "The reproduce_*.ipynb notebooks of the working tree, or of git revision `rev`."
    if rev is None:
        return {p.name: json.loads(p.read_text()) for p in sorted((ROOT / "nbs").glob("reproduce_*.ipynb"))}
    names = subprocess.run(["git", "ls-tree", "--name-only", rev, "nbs/"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split()
    return {Path(n).name: json.loads(subprocess.run(["git", "show", f"{rev}:{n}"], cwd=ROOT, check=True,
                                                    capture_output=True, text=True).stdout)
            for n in sorted(names) if Path(n).name.startswith("reproduce_") and n.endswith(".ipynb")}


def shared(nbs: dict[str, dict], at_least: int = 4, parameters: bool = True) -> tuple[int, int]:
    "(shared lines, all code lines) over the notebooks."
    lines = {k: code_lines(nb, parameters) for k, nb in nbs.items()}
    where = Counter(s for ls in lines.values() for s in set(ls))
    total = sum(len(ls) for ls in lines.values())
    return sum(1 for ls in lines.values() for s in ls if where[s] >= at_least), total


def report(label: str, nbs: dict, at_least: int) -> None:
    for params, what in ((True, "all code lines"), (False, "without the parameters cell")):
        n, total = shared(nbs, at_least, params)
        print(f"{label}: {n} of {total} {what} ({n / max(total, 1):.0%}) occur in >= {at_least} "
              f"of the {len(nbs)} reproduce notebooks")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rev", help="also measure the notebooks of this git revision (e.g. main), as 'before'")
    p.add_argument("--min", type=int, default=4, help="a line is shared when in at least this many notebooks")
    a = p.parse_args()
    if a.rev: report(f"before ({a.rev})", notebooks(a.rev), a.min)
    report("now", notebooks(None), a.min)
