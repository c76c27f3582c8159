"""The executed notebooks as a static HTML site (`make report`, `dflite report`): a page per notebook, rendered by
nbconvert with its figures embedded, and an index page with each notebook's title and summary and the profile's
findings, generated from the published results like the README's. The pages open from disk, offline: nbconvert's
template still links require.js and MathJax from a CDN, which only widgets and the notebooks' few formulas use."""
from __future__ import annotations

import html
import json
from pathlib import Path

from . import paths
from .folders import claim, write_marker

MARKER = "dflite_report.json"


def title_and_summary(nb: dict) -> tuple:
    """The first markdown cell's heading and its first paragraph (the notebooks open with both)."""
    for cell in nb["cells"]:
        if cell["cell_type"] == "markdown":
            text = "".join(cell["source"]).strip()
            lines = text.splitlines()
            title = lines[0].lstrip("# ").strip() if lines and lines[0].startswith("#") else ""
            rest = "\n".join(lines[1:] if title else lines).strip()
            summary = rest.split("\n\n")[0].lstrip("> ").replace("\n> ", " ").replace("\n", " ").strip()
            return title, summary
    return "", ""


def _page(nb_path: Path) -> str:
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_name="lab").from_filename(str(nb_path))
    return body


def _index(entries: list, findings_md: str, profile: str) -> str:
    from nbconvert.filters.markdown import markdown2html

    items = "\n".join(f'<li><a href="{html.escape(page)}"><b>{html.escape(name)}</b></a>: {html.escape(title)}'
                      f'<br><span class="summary">{markdown2html(summary)}</span></li>'
                      for name, page, title, summary in entries)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>dflite: the executed notebooks ({profile})</title>
<style>body {{ font-family: sans-serif; max-width: 60em; margin: 2em auto; line-height: 1.45; padding: 0 1em; }}
li {{ margin-bottom: 0.8em; }} .summary p {{ margin: 0.2em 0; color: #333; }}
table {{ border-collapse: collapse; font-size: 0.9em; }} td, th {{ border: 1px solid #ccc; padding: 0.2em 0.5em; }}
</style></head><body>
<h1>dflite: the executed notebooks ({profile} profile)</h1>
<p>Each page is a committed notebook with the outputs it stored when it last ran (<code>make reproduce</code>
runs them again). The findings below are generated from <code>results/{profile}/</code>, as the README's are.</p>
<ol>
{items}
</ol>
<h2>Findings</h2>
{markdown2html(findings_md)}
</body></html>
"""


def build(out=None, profile: str = "quick", force: bool = False, progress: bool = True) -> Path:
    """Write the site into `out` (default data/report/): <notebook>.html for every committed notebook and
    index.html. A non-empty folder dflite did not make is refused."""
    from .config import resolve
    from .reproduce import notebooks
    from .studies import report

    out = Path(out or paths.data_dir() / "report")
    claim(out, MARKER, {"made_by": "dflite report"}, force, "dflite report")
    out.mkdir(parents=True, exist_ok=True)
    entries = []
    for nb_path in notebooks():
        page = nb_path.with_suffix(".html").name
        (out / page).write_text(_page(nb_path), encoding="utf-8")
        title, summary = title_and_summary(json.loads(nb_path.read_text()))
        entries.append((nb_path.stem, page, title, summary))
        if progress:
            print(f"report: {page}", flush=True)
    findings = str(report.findings(resolve(profile)))
    (out / "index.html").write_text(_index(entries, findings, profile), encoding="utf-8")
    write_marker(out, MARKER, {"made_by": "dflite report", "complete": True})
    return out
