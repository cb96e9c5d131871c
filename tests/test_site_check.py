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


def _wrapped(x):
    """The first sentence of this summary runs past the end of its line and so it continues
    on the next line."""


class _Exported:
    "One line."
    def method(self):
        """A method whose summary continues
        here."""
    @property
    def prop(self):
        "One line.\n\nA second paragraph is fine."
    def _private(self):
        """Private methods are not
        documented."""


def test_wrapped_first_paragraph_is_found(tmp_path, monkeypatch):
    "The old wrapped form is reported for functions, classes and public methods; one-liners pass."
    import sys, types
    fake = types.ModuleType("spreid_nb._fake_docs"); fake.f, fake.C = _wrapped, _Exported
    monkeypatch.setitem(sys.modules, "spreid_nb._fake_docs", fake)
    assert check_site.first_paragraph_spans_lines(_wrapped)
    assert not check_site.first_paragraph_spans_lines(_Exported.prop.fget)
    api = {"f": "_fake_docs.f", "c": "_fake_docs.C"}
    assert check_site.wrapped_docstrings(api) == ["_fake_docs.f", "_fake_docs.C.method"]
    (tmp_path / "a.html").write_text('<h3 id="f">f</h3><h3 id="c">C</h3>')
    monkeypatch.setattr(check_site, "public_api", lambda: api)
    found = check_site.scan(tmp_path)
    why = "docstring's first paragraph spans lines (show_doc italicises only the first line): "
    assert found == [why + n for n in ["_fake_docs.f", "_fake_docs.C.method"]], found


def test_public_docstrings_have_one_line_first_paragraphs():
    assert check_site.wrapped_docstrings() == []
