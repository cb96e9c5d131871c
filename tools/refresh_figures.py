"""Regenerate the committed figures/ and the reproduction notebooks' stored outputs: the project's own refresh.

    .venv/bin/python tools/refresh_figures.py                      # Tables 1-6 and Figure 2, Table 6 first
    .venv/bin/python tools/refresh_figures.py reproduce_table4     # one notebook
    .venv/bin/python tools/refresh_figures.py --runs-root /scratch/runs --dry-run

A user's `papermill nbs/reproduce_table6.ipynb out.ipynb` writes into its own folder (runs/<preset>/results);
only this refresh passes `-p refresh_figures True`, which writes into figures/. Each notebook runs with papermill
into a temporary copy that replaces nbs/NAME.ipynb once all have run (so the site shows the run, and the
tables' provenance names a clean commit), Table 6 first because the other tables reuse its runs;
the cell papermill injects with the parameters is removed afterwards, so that the stored notebook keeps a
user's defaults. Then nbdev_clean and tools/make_readme.py. From scratch on the 2-core CPU: Table 6 about 21
minutes, Tables 2 and 5 about 6 more; the study notebook (study_semantic_pooling, about an hour) only when named.
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ORDER = ["reproduce_table6", "reproduce_table4", "reproduce_table1", "reproduce_table2", "reproduce_table3",
         "reproduce_table5", "reproduce_figure2"]
OPTIONAL = ["study_semantic_pooling", "study_real"]


def papermill_command(name: str, runs_root: str | None = None, out: str | None = None) -> list[str]:
    "The papermill call that re-runs nbs/NAME.ipynb (into `out`, default in place), writing into figures/."
    nb = f"nbs/{name}.ipynb"
    cmd = [sys.executable, "-m", "papermill", nb, out or nb, "--cwd", "nbs", "-k", "python3", "--log-output",
           "-p", "refresh_figures", "True"]
    return cmd + (["-p", "runs_root", str(Path(runs_root).resolve())] if runs_root else [])


def strip_injected(path: Path) -> int:
    "Remove the cells papermill injected with the parameters from the notebook at `path`; return how many."
    nb = json.loads(path.read_text(encoding="utf-8"))
    keep = [c for c in nb["cells"] if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    n = len(nb["cells"]) - len(keep)
    if n:
        nb["cells"] = keep
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return n


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="tools/refresh_figures.py", description=__doc__.split("\n\n")[0])
    p.add_argument("notebooks", nargs="*", metavar="NOTEBOOK",
                   help=f"which to re-run, of {' '.join(ORDER + OPTIONAL)} (default: {' '.join(ORDER)})")
    p.add_argument("--runs-root", help="where the runs go (default: the notebooks' own, runs/<preset>)")
    p.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    a = p.parse_args(argv)
    unknown = sorted(set(a.notebooks) - set(ORDER + OPTIONAL))
    if unknown: p.error(f"unknown notebook(s) {unknown}; choose from {ORDER + OPTIONAL}")
    names = [n for n in ORDER + OPTIONAL if n in a.notebooks] or ORDER
    # each executed notebook waits in a temporary folder until all have run: the tracked files outside
    # figures/ stay as committed meanwhile, so every table's provenance names a clean commit
    import shutil
    import tempfile
    done = []
    with tempfile.TemporaryDirectory(prefix="refresh-") as tmp:
        for name in names:
            out = str(Path(tmp) / f"{name}.ipynb")
            cmd = papermill_command(name, a.runs_root, out)
            print(" ".join(["python", *cmd[1:4], f"nbs/{name}.ipynb", *cmd[5:]]), flush=True)
            if a.dry_run: continue
            subprocess.run(cmd, cwd=ROOT, check=True)
            done.append((name, Path(out)))
        for name, out in done:
            shutil.copyfile(out, ROOT / "nbs" / f"{name}.ipynb")
            strip_injected(ROOT / "nbs" / f"{name}.ipynb")
    if not a.dry_run:
        bin_ = Path(sys.executable).parent
        subprocess.run([str(bin_ / "nbdev_clean")], cwd=ROOT, check=True)
        subprocess.run([sys.executable, "tools/make_readme.py"], cwd=ROOT, check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
