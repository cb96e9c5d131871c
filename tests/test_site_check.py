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


README = """# x

| method | mAP (ours) |
|---|---:|
| a | 1 |

### Study: arms

| arm | mAP_mean |
|---|---|
| b | 2 |
"""
HOME_OK = """<html><body><h3 id="study-arms">Study: arms<a href="#study-arms">¶</a></h3>
<table><thead><tr><th>method</th><th>mAP (ours)</th></tr></thead><tbody><tr><td>a</td><td>1</td></tr></tbody></table>
<table><thead><tr><th>arm</th><th>mAP_mean</th></tr></thead><tbody><tr><td>b</td><td>2</td></tr></tbody></table>
</body></html>"""
LOG = "table6: 2 runs, 0 reused, 2 to train\n[1/2] a: 9 steps, about 1s\n" + "".join(
    f"  a-1234: step {k}/9, 1s elapsed, ETA 1s\n" for k in range(1, 10)) + "[1/2] a: done in 2s\n"
PAGE_LOG = '<div class="jp-Cell jp-CodeCell">' + "".join(
    f'<div class="jp-OutputArea-output" data-mime-type="text/plain"><pre>{line}</pre></div>'
    for line in LOG.splitlines()) + "</div>"
SOTA = """<table class="dataframe"><thead><tr><th></th><th>method</th><th>rank-5</th></tr></thead>
<tbody><tr><th>0</th><td>SVDNet</td><td>92.3</td></tr><tr><th>1</th><td>SSM</td><td>NaN</td></tr></tbody></table>"""
BREAK_ALL = "<style>.jupyter-wrapper .jp-OutputArea-output pre{border:none;word-break:break-all}</style>"


def _site(tmp_path, pages: dict, css: str = "") -> Path:
    site = tmp_path / "_site"; (site / "stylesheets").mkdir(parents=True)
    for name, html in pages.items(): (site / name).write_text(html)
    (site / "stylesheets" / "extra.css").write_text(css)
    (tmp_path / "README.md").write_text(README)
    return site


def test_home_page_shows_every_readme_table_and_heading(tmp_path, monkeypatch):
    monkeypatch.setattr(check_site, "public_api", lambda: {})
    assert check_site.scan(_site(tmp_path, {"index.html": HOME_OK})) == []
    no_study = HOME_OK.split('<table><thead><tr><th>arm')[0].replace("Study: arms", "Study") + "</body></html>"
    found = "\n".join(check_site.scan(_site(tmp_path / "b", {"index.html": no_study})))
    assert "the README's table | arm | mAP_mean | is not on the home page" in found, found
    assert "the README's heading 'Study: arms' is not on the home page" in found, found


def test_training_log_index_column_nan_and_word_breaks_are_found(tmp_path, monkeypatch):
    monkeypatch.setattr(check_site, "public_api", lambda: {})
    site = _site(tmp_path, {"reproduce_table6.html": BREAK_ALL + PAGE_LOG + SOTA})
    found = "\n".join(check_site.scan(site))
    for what in ["a training log of 9 progress lines shown in full", "pandas' index column (0, 1, ...)",
                 "a table shows NaN (", "output text breaks inside words"]:
        assert what in found, (what, found)
    folded = f"<details><summary>log</summary>{PAGE_LOG}</details>"
    clean = SOTA.replace("<th></th>", "").replace("<th>0</th>", "").replace("<th>1</th>", "").replace("NaN", "–")
    css = ".md-typeset .jupyter-wrapper .jp-OutputArea-output pre { word-break: normal; overflow-wrap: break-word; }"
    assert check_site.scan(_site(tmp_path / "b", {"reproduce_table6.html": BREAK_ALL + folded + clean}, css)) == []


def test_the_docs_hook_collapses_a_training_log():
    spec = importlib.util.spec_from_file_location("mkdocs_hooks", ROOT / "tools" / "mkdocs_hooks.py")
    hooks = importlib.util.module_from_spec(spec); spec.loader.exec_module(hooks)
    short = hooks.collapse_log(LOG)
    assert short.splitlines() == ["table6: 2 runs, 0 reused, 2 to train", "  a-1234: step 9/9, 1s elapsed, ETA 1s",
                                  "[1/2] a: done in 2s", "(9 progress lines folded below)"], short
    assert hooks.collapse_log("table6: 1 runs\n  a: step 1/2, 1s elapsed, ETA 1s\n") is None  # short: as it is


def test_nbdev_reads_settings_without_a_warning():
    "settings.ini holds no key nbdev has deprecated (its warning would print in every docs build)."
    import warnings
    from nbdev.config import get_config
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        get_config(path=ROOT)


def test_source_links_point_at_definitions_in_this_repository():
    url = check_site.source_url()
    assert url.endswith("/blob/main") and url.startswith("https://github.com/")
    lines = (ROOT / "spreid_nb" / "paper.py").read_text().splitlines()
    at = next(i for i, l in enumerate(lines, 1) if l.startswith("def claim_lines"))
    assert check_site.source_link_problems([f"{url}/spreid_nb/paper.py#L{at}"]) == []
    bad = check_site.source_link_problems([
        "https://github.com/someone/else/blob/main/spreid_nb/paper.py#L1",    # another repository
        f"{url}/spreid_nb/nothing_here.py#L1",                                 # no such file
        f"{url}/spreid_nb/paper.py#L{len(lines) + 5}",                         # past the end
        f"{url}/spreid_nb/paper.py#L{at + 1}"])                                # not a definition
    assert [("does not point" in b, "no file" in b, "defines nothing" in b) for b in bad] == [
        (True, False, False), (False, True, False), (False, False, True), (False, False, True)]


def test_committed_figures_hold_no_machine_paths():
    "A committed table, CSV or JSON names files relative to a dataset or the project, not a machine's folders."
    found = {p.name: sorted(set(check_site.ABS_PATH.findall(p.read_text(encoding="utf-8"))))
             for p in sorted((ROOT / "figures").iterdir()) if p.suffix in (".md", ".csv", ".json", ".jsonl")}
    assert not {k: v for k, v in found.items() if v}, found
