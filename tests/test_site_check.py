"""The docs-site scan (tools/check_site.py) finds each thing a reader must not see, and passes a clean page."""
import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("check_site", ROOT / "tools" / "check_site.py")
check_site = importlib.util.module_from_spec(spec); spec.loader.exec_module(check_site)

CLEAN = """<html><body><h3 id="load_reid">load_reid</h3><p>See <code>~/.cache/spreid_nb</code> and /data.</p>
<div class="jp-InputArea"><pre>plan.run(spec)</pre></div>
<div class="jp-OutputArea-output" data-mime-type="text/plain"><pre>skipped: cannot read imgs/broken.jpg (UnidentifiedImageError: bad)</pre></div>
</body></html>"""

BAD = """<html><body><p>[source](x){target="_blank"}</p><p>runs in /home/alice/spreid/runs</p>
<div class="jp-InputArea"><pre>show_doc(load_reid)</pre></div>
<div class="jp-OutputArea-output" data-mime-type="application/vnd.jupyter.stderr"><pre>oops</pre></div>
<div class="jp-OutputArea-output" data-mime-type="text/plain"><pre>Traceback (most recent call last):
  File "x.py", line 1</pre></div>
<div class="jp-OutputArea-output" data-mime-type="text/plain"><pre>x.py:3: UserWarning: careful</pre></div>
</body></html>"""


def test_clean_page_passes(tmp_path, monkeypatch):
    (tmp_path / "a.html").write_text(CLEAN)
    monkeypatch.setattr(check_site, "public_api", lambda: {"load_reid": "datasets.load_reid"})
    assert check_site.scan(tmp_path) == []


def test_each_problem_is_found(tmp_path, monkeypatch):
    (tmp_path / "a.html").write_text(BAD)
    monkeypatch.setattr(check_site, "public_api", lambda: {"load_reid": "datasets.load_reid"})
    found = "\n".join(check_site.scan(tmp_path))
    for what in ["'{target='", "absolute path '/home/alice", "show_doc(...) source shown", "stderr in a stored output",
                 "Traceback", "UserWarning", "undocumented: datasets.load_reid"]:
        assert what in found, (what, found)


def test_public_api_lists_exported_functions_and_classes():
    api = check_site.public_api()
    assert api["load_reid"] == "datasets.load_reid" and api["reiddata"] == "datasets.ReidData"
    assert not any(k.startswith("_") for k in api)
