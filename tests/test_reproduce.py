"""The papermill runner: order, parameters, failure report, metadata stripping."""
import json
import re

import nbformat
import pytest
from dflite import paths, reproduce


def test_notebooks_are_numbered_and_ordered():
    names = [p.name for p in reproduce.notebooks()]
    assert names and names == sorted(names) and names[0] == "00_data.ipynb"
    assert [p.name for p in reproduce.notebooks(["0"])] == ["00_data.ipynb"]
    with pytest.raises(ValueError, match="no notebook numbered 42"):
        reproduce.notebooks(["42"])


def test_every_notebook_has_a_parameters_cell_with_profile():
    for path in reproduce.notebooks():
        nb = nbformat.read(path, as_version=4)
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, path.name
        assert 'profile: str = "quick"' in tagged[0].source


def test_papermill_knows_every_parameters_type_and_meaning():
    """`papermill --help-notebook` shows each parameter's type (from its annotation) and its comment."""
    import papermill as pm

    for path in reproduce.notebooks():
        params = pm.inspect_notebook(str(path))
        assert params["profile"]["default"] == '"quick"', path.name
        assert all(p["inferred_type_name"] in ("str", "int", "float", "bool") and p["help"] for p in params.values()), \
            path.name


def test_jupyter_opens_the_committed_notebooks_with_the_kernel_they_name():
    """The kernelspec's display name is the installed kernel's, so opening a notebook does not mark it changed."""
    for path in reproduce.notebooks():
        spec = nbformat.read(path, as_version=4).metadata.kernelspec
        assert (spec.name, spec.display_name) == ("python3", "Python 3 (ipykernel)"), path.name


def test_every_notebook_ends_by_saying_how_long_it_ran():
    for path in reproduce.notebooks():
        last = nbformat.read(path, as_version=4).cells[-1]
        assert last.cell_type == "code" and last.source == "print(studies.elapsed())", path.name
        shown = "".join(o.get("text", "") for o in last.get("outputs", []))
        assert shown.startswith("This notebook ran for ") and " min in this execution" in shown, path.name
    from dflite import studies
    assert re.match(r"This notebook ran for \d+\.\d min in this execution", studies.elapsed())


def test_the_committed_tables_show_whole_texts():
    """No table cell in a stored output is cut to pandas' 50 characters ('...' in place of a claim's end)."""
    for path in reproduce.notebooks():
        for cell in nbformat.read(path, as_version=4).cells:
            for out in cell.get("outputs", []):
                html = out.get("data", {}).get("text/html", "")
                assert not re.search(r"<td>[^<]{40,}\.\.\.</td>", html), f"{path.name}: a cut table cell"


def test_the_notebooks_setup_lets_tables_show_whole_texts():
    import pandas as pd
    from dflite import studies

    claim = "(t2) a carried ticket loses at most 0.01 AUC against the target's own ticket"
    try:
        studies.environment()
        assert claim in pd.DataFrame({"claim": [claim]})._repr_html_()  # what Jupyter shows
    finally:
        pd.reset_option("display.max_colwidth")
    assert claim not in pd.DataFrame({"claim": [claim]})._repr_html_()  # what Jupyter shows


def test_profile_parameters():
    assert reproduce.parameters_for("quick", "00_data") == {"profile": "quick"}
    assert reproduce.parameters_for("paper", "00_data")["dataset"] == "ffpp"
    with pytest.raises(ValueError, match="no profile file"):
        reproduce.profile_parameters("nope")


def _one_cell_notebook(tmp_path, name: str, code: str):
    """A notebooks/ folder with a quick profile file and one notebook: a parameters cell, then `code`."""
    nbdir = tmp_path / "notebooks"
    (nbdir / "profiles").mkdir(parents=True)
    (nbdir / "profiles" / "quick.yaml").write_text("all:\n  profile: quick\n")
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = "quick"  # profile')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(code)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, nbdir / name)
    return nbdir


def test_failure_names_the_cell_and_the_executed_notebook(tmp_path, monkeypatch, capsys):
    nbdir = _one_cell_notebook(tmp_path, "00_boom.ipynb", "1 / 0")
    monkeypatch.setattr(paths, "NOTEBOOKS", nbdir)
    with pytest.raises(SystemExit) as exit_info:
        reproduce.run("quick", out_dir=tmp_path / "out", progress=False)
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "FAILED: 00_boom.ipynb" in err and "ZeroDivisionError" in err
    assert "00_boom.ipynb" in err.splitlines()[-1]
    assert (tmp_path / "out" / "00_boom.ipynb").is_file()


def test_the_log_shows_what_cells_print_as_they_run(tmp_path, monkeypatch, capsys):
    """`make reproduce` writes a log: the cells' progress lines (stderr) and prints reach it, and each notebook
    ends with its time; papermill's redrawn cell bar stays off a log."""
    nbdir = _one_cell_notebook(tmp_path, "00_talk.ipynb",
                               "import sys\nprint('trained 3 of 8')\nprint('runs: 4/8 (50 %)', file=sys.stderr)")
    monkeypatch.setattr(paths, "NOTEBOOKS", nbdir)
    reproduce.run("quick", out_dir=tmp_path / "out")
    out, err = capsys.readouterr()
    assert "trained 3 of 8" in out and "runs: 4/8 (50 %)" in err
    assert "[quick] 00_talk done in" in out.splitlines()[-1]
    assert "Executing" not in err  # no cell bar in a log


def test_strip_run_metadata_keeps_outputs(tmp_path):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("1 + 1", execution_count=1,
                                     outputs=[nbformat.v4.new_output("execute_result", {"text/plain": "2"},
                                                                     execution_count=1)])
    cell.metadata["papermill"] = {"duration": 0.1}
    cell.metadata["execution"] = {"iopub.status.busy": "2026"}
    nb.cells = [cell]
    nb.metadata["papermill"] = {"duration": 1.0}
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, path)
    reproduce.strip_run_metadata(path)
    back = json.loads(path.read_text())
    assert "papermill" not in back["metadata"]
    assert back["cells"][0]["metadata"] == {} and back["cells"][0]["execution_count"] == 1
    assert "".join(back["cells"][0]["outputs"][0]["data"]["text/plain"]) == "2"


def test_every_notebook_takes_the_dataset_and_the_paper_profile_sets_it():
    for path in reproduce.notebooks():
        nb = nbformat.read(path, as_version=4)
        params = next(c.source for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        assert "dataset: str = " in params and "data_root: str = " in params, path.name
        paper = reproduce.parameters_for("paper", path.stem)
        assert paper["dataset"] == "ffpp" and paper["data_root"], path.name


def test_each_notebooks_last_time_is_recorded_and_shown(tmp_path, monkeypatch):
    """reproduce keeps papermill's measured duration per notebook (the last execution wins, others are kept), and
    the README's findings show those times, so no run time is typed by hand."""
    from dflite.studies import report

    monkeypatch.setenv("DFLITE_DATA", str(tmp_path / "data"))
    for stem, seconds in (("02_baselines", 301.4), ("03_lottery_tickets", 90.0), ("02_baselines", 12.0)):
        nb = nbformat.v4.new_notebook()
        nb.metadata["papermill"] = {"duration": seconds}
        nbformat.write(nb, tmp_path / f"{stem}.ipynb")
        reproduce.record_time("quick", tmp_path / f"{stem}.ipynb")
    results = paths.runs_dir("quick") / "results"
    assert (results / paths.TIMINGS).read_text() == "notebook,seconds\n02_baselines,12\n03_lottery_tickets,90\n"
    shown = report.run_times(results)
    assert "1.7 minutes in all" in shown and "| 03_lottery_tickets | 1.5" in shown


def test_a_data_root_the_notebooks_would_not_read_is_refused_before_anything_runs(tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match=r"would be ignored: profile 'quick' runs 00_data on the built-in synthetic "
                                         r"set.*notebooks/profiles/quick.yaml.*PROFILE=paper"):
        reproduce.run("quick", ["00"], out_dir=out, data_root=str(tmp_path))
    with pytest.raises(ValueError, match="profile 'standard'"):
        reproduce.run("standard", ["00"], out_dir=out, data_root=str(tmp_path))
    with pytest.raises(ValueError, match="--data-root .*missing is not a folder"):
        reproduce.run("paper", ["00"], out_dir=out, data_root=str(tmp_path / "missing"))
    assert not out.exists()  # nothing executed, nothing written
    from dflite import cli
    assert cli.main(["reproduce", "--only", "00", "--data-root", str(tmp_path / "FaceForensics++")]) == 2
    assert "would be ignored" in capsys.readouterr().err
    assert cli.main(["reproduce", "--only", "99"]) == 2
    assert "no notebook numbered 99" in capsys.readouterr().err


def test_a_papermill_seed_sweep_of_notebook_00_lives_in_one_data_folder(tmp_path, monkeypatch):
    """Seeds 1 and 2 side by side (each under its own name), then seed 1 again: found and reused, not refused."""
    import json as _json

    import papermill as pm

    tiny = tmp_path / "sweep.yaml"  # a tiny synthetic set, so that the sweep takes seconds
    tiny.write_text("name: quick-sweep\nsynth: {identities: 4, frames: 6, of_images: [3, 1, 1, 1], "
                    "compressions: [c23]}\n")
    data = tmp_path / "data"
    monkeypatch.setenv("DFLITE_DATA", str(data))
    nb = paths.NOTEBOOKS / "00_data.ipynb"
    for seed in (1, 2, 1):
        pm.execute_notebook(str(nb), str(tmp_path / f"out_{seed}.ipynb"), cwd=str(paths.NOTEBOOKS),
                            parameters={"seed": seed, "overrides": str(tiny), "workers": 1}, progress_bar=False,
                            kernel_name="python3")
    made = {p.parent.name: _json.loads(p.read_text())["seed"] for p in (data / "synth").glob("*/dflite_synth.json")}
    assert made == {"quick-sweep-data1": 1, "quick-sweep-data2": 2}
