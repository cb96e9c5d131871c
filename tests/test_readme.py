"""Every shell command of the README runs as a newcomer types it, on a fresh clone, smoke-sized.

The README's commands are the lines of its ```sh blocks and any inline `code` that starts like a command
(`.venv/bin/`, `python`, `pip`, `conda`, `bash`, `papermill`, `NO_MKDOCS`). Each one is
- run here (`RUN`), in a fresh clone of the working tree (its tracked and unignored files, committed) whose `.venv`
  is this test's environment, exactly as written but for the README's documented smoke option: the reproduction
  gets `-p preset smoke` and the commands after it read `runs/smoke` for `runs/synthetic`; JupyterLab runs until
  it serves, then stops;
- run by `.ci/run` itself (`CI`): the set-up, the tests (this test is one of them) and the docs build, each the
  line `.ci/run` takes from the README;
- or checked without running, for a stated reason (`CHECKED`).
A README command that is none of these fails the test, as does one that fails. After the commands the clone's
`git status` is clean: a reproduction writes only into the ignored runs/ and out.ipynb. About 2 minutes.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import timeout_s

ROOT = Path(__file__).resolve().parents[1]
SMOKE = "-p preset smoke"  # the README: "Add `-p preset smoke` for the same in about a minute"

# command -> how the test covers it (the README's own text, so that a changed command must be classified again)
RUN = {
    ".venv/bin/jupyter lab": 30,  # about how long each takes on an idle machine, in seconds
    ".venv/bin/papermill nbs/reproduce_table6.ipynb out.ipynb": 90,
    ".venv/bin/spreid extract runs/synthetic/benchmark/bounding_box_test "
    "--model runs/synthetic/latest-spreid_wfg-exclusive-ft --out runs/gallery.npz": 30,
    ".venv/bin/spreid search runs/synthetic/benchmark/query --gallery runs/gallery.npz --out runs/search": 20,
    ".venv/bin/spreid index runs/gallery.npz --kind ivf": 20,
}
CI = {  # command -> the pattern .ci/run greps the README for
    'python3 -m venv .venv && .venv/bin/pip install -e ".[dev]"': "'^python3 -m venv .venv'",
    ".venv/bin/nbdev_test --n_workers 2 && .venv/bin/pytest -q tests": "'^\\.venv/bin/nbdev_test'",
    "NO_MKDOCS_2_WARNING=1 .venv/bin/mkdocs build --strict": "'mkdocs build'",
    "bash .ci/run": None,  # CI itself
}
CHECKED = {  # command -> why it is not run, and what is checked instead
    "conda env create -f environment.yml": "conda is not installed where CI runs; tests/test_foundation.py checks "
                                           "that environment.yml names settings.ini's pins",
}
STARTS = (".venv/bin/", "python", "pip ", "conda ", "bash ", "papermill ", "NO_MKDOCS")


def readme_commands(text: str) -> list[str]:
    "The README's shell commands in order: ```sh block lines, then inline code that starts like a command."
    cmds = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        cmds += [line.strip() for line in block.splitlines() if line.strip() and not line.startswith("#")]
    prose = re.sub(r"```.*?```", "", text, flags=re.S)
    cmds += [c for c in re.findall(r"`([^`\n]+)`", prose) if c.startswith(STARTS)]
    return cmds


def test_every_readme_command_is_covered():
    "Each command is run here, by .ci/run, or checked; .ci/run takes exactly these lines from the README."
    text = (ROOT / "README.md").read_text()
    cmds = readme_commands(text)
    unknown = [c for c in cmds if c not in {**RUN, **CI, **CHECKED}]
    assert not unknown, f"README commands no test runs (classify them in tests/test_readme.py): {unknown}"
    assert set(RUN) <= set(cmds), sorted(set(RUN) - set(cmds))
    ci = (ROOT / ".ci" / "run").read_text()
    for cmd, pattern in CI.items():
        if pattern is None: continue
        assert f"grep -m1 {pattern} README.md" in ci, pattern
        first = [line for line in text.splitlines() if re.search(pattern.strip("'").replace("\\.", "\\."), line)][0]
        assert cmd in first, (cmd, first)
    assert "environment.yml" in (ROOT / "tests" / "test_foundation.py").read_text()


def _fresh_clone(dest: Path) -> Path:
    "A repository holding the working tree's tracked and unignored files in one commit, as a clone would."
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for f in filter(None, files):
        if not (ROOT / f).is_file(): continue  # deleted in the working tree
        (dest / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / f, dest / f)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-q", "-m", "fresh clone"]):
        subprocess.run(cmd, cwd=dest, env=env, check=True, capture_output=True)
    return dest


def _serve_then_stop(cmd: str, cwd: Path, env: dict, idle_s: float) -> str:
    "Start a server command as written; wait for the address it serves; stop it. Its output."
    p = subprocess.Popen(["bash", "-c", f"exec {cmd}"], cwd=cwd, env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, start_new_session=True)
    out, t = [], time.time()
    try:
        for line in p.stdout:
            out.append(line)
            if re.search(r"https?://(localhost|127\.0\.0\.1):\d+/lab", line): break
            if time.time() - t > timeout_s(idle_s): break
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        try: p.wait(timeout=timeout_s(10))
        except subprocess.TimeoutExpired: os.killpg(p.pid, signal.SIGKILL)
    return "".join(out)


@pytest.mark.slow
def test_readme_commands_run_on_a_fresh_clone(tmp_path):
    if sys.prefix == sys.base_prefix or not (Path(sys.prefix) / "bin" / "spreid").exists():
        pytest.skip("needs the project's virtual environment (python3 -m venv .venv && pip install -e '.[dev]')")
    repo = _fresh_clone(tmp_path / "spreid_nb")
    (repo / ".venv").mkdir()  # the README's .venv (a folder, as git ignores it): this test's environment
    (repo / ".venv" / "bin").symlink_to(Path(sys.prefix) / "bin", target_is_directory=True)
    env = {**os.environ, "PYTHONPATH": str(repo), "BROWSER": "true", "JUPYTER_RUNTIME_DIR": str(tmp_path / "rt"),
           "OMP_WAIT_POLICY": "PASSIVE"}
    if os.geteuid() == 0:  # JupyterLab refuses root unless allowed (the README says so): CI's containers run as root
        (tmp_path / "jupyter").mkdir()
        (tmp_path / "jupyter" / "jupyter_server_config.json").write_text('{"ServerApp": {"allow_root": true}}')
        env["JUPYTER_CONFIG_DIR"] = str(tmp_path / "jupyter")
    figures = {p.name: p.read_bytes() for p in (repo / "figures").iterdir() if p.is_file()}
    smoke, log = False, []
    for cmd in readme_commands((repo / "README.md").read_text()):
        if cmd not in RUN: continue
        if "jupyter lab" in cmd:
            out = _serve_then_stop(cmd, repo, env, RUN[cmd])
            assert re.search(r"https?://(localhost|127\.0\.0\.1):\d+/lab", out), out[-3000:]
            log.append(cmd); continue
        run = cmd
        if "nbs/reproduce_" in cmd: run, smoke = f"{cmd} {SMOKE}", True
        elif smoke: run = cmd.replace("runs/synthetic/", "runs/smoke/")
        r = subprocess.run(["bash", "-c", run], cwd=repo, env=env, capture_output=True, text=True,
                           timeout=timeout_s(RUN[cmd]))
        assert r.returncode == 0, f"{run}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
        log.append(run)
    assert len(log) == len(RUN) + 1, log  # the search runs twice: a scan, then with the index
    results = repo / "runs" / "smoke" / "results"
    assert (results / "table6.md").is_file() and "preset: smoke" in (results / "table6.md").read_text()
    assert (repo / "runs" / "search" / "ranking.png").is_file() and (repo / "runs" / "gallery.npz.faiss").is_file()
    assert {p.name: p.read_bytes() for p in (repo / "figures").iterdir() if p.is_file()} == figures
    status = subprocess.run(["git", "status", "--porcelain"], cwd=repo, capture_output=True, text=True).stdout
    assert status == "", f"the README's commands left files git sees:\n{status}"
