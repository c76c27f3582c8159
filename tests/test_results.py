"""The README's findings are generated from the published results files, and the committed text is exactly what
they generate; no number in a notebook's prose is typed by hand."""
from __future__ import annotations

import json
import re
import shutil

from dflite import paths
from dflite.config import resolve
from dflite.studies import report

QUICK = resolve("quick")


def test_the_committed_readme_and_findings_page_hold_what_the_published_results_generate():
    for name, where in report.SECTIONS.items():
        have = report.readme_section(QUICK, name=name)
        assert have is not None, f"{where} has no {name}:quick markers"
        assert have == report.readme_block(QUICK, name=name), "run `dflite results --profile quick --write-readme`"
    assert report.stale_sections(QUICK) == []
    assert (report.published_dir(QUICK) / "env.json").is_file()
    assert report.headline_figure_path(QUICK).is_file()


def test_the_headline_counts_every_verdict_and_lists_the_decided_claims(tmp_path):
    folder = tmp_path / "results"
    shutil.copytree(report.published_dir(QUICK), folder)
    text = report.headline(QUICK, folder)
    for name, study, _ in report.VERDICTS:
        if name.removesuffix("_verdicts") in report.OPTIONAL and not (folder / f"{name}.csv").is_file():
            assert f"| {study} |" not in text  # a study this profile does not run has no row
            continue
        rows = len((folder / f"{name}.csv").read_text().strip().splitlines()) - 1
        assert f"| {study} | {rows} | " in text
    holds = sum(f.read_text().count(",holds\n") for f in folder.glob("*_verdicts.csv"))
    assert text.count(": holds;") == holds
    verdicts = folder / "tickets_verdicts.csv"
    verdicts.write_text(verdicts.read_text().replace(",holds\n", ",does not hold\n", 1))
    changed = report.headline(QUICK, folder)
    assert changed.count(": holds;") == holds - 1 and ": does not hold;" in changed
    assert "P1" in text and "P2" in text and "met: " in text
    assert len(str(report.readme_block(QUICK, name="headline")).splitlines()) < 60  # the README's first screen


def test_the_findings_follow_the_files(tmp_path):
    folder = tmp_path / "results"
    shutil.copytree(report.published_dir(QUICK), folder)
    before = report.findings(QUICK, folder)
    verdicts = folder / "tickets_verdicts.csv"
    text = verdicts.read_text()
    first = text.splitlines()[1].split(",")[0]  # the first claim's text
    verdicts.write_text(text.replace(first, "(z) a claim nobody made", 1))
    after = report.findings(QUICK, folder)
    assert "(z) a claim nobody made" in after and after != before


def test_write_readme_replaces_only_the_section(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\nbefore\n\n<!-- findings:quick:start -->\nstale\n<!-- findings:quick:end -->\n\nafter\n")
    assert report.write_readme(QUICK, readme, name="findings")
    text = readme.read_text()
    assert text.startswith("# x\n\nbefore\n\n") and text.endswith("\n\nafter\n") and "stale" not in text
    assert report.readme_section(QUICK, readme) == report.readme_block(QUICK)
    assert not report.write_readme(QUICK, readme, name="findings")  # idempotent
    readme.write_text("# no markers\n")
    try:
        report.write_readme(QUICK, readme, name="headline")
    except ValueError as e:
        assert "headline:quick:start" in str(e)
    else:
        raise AssertionError("a README without markers must be refused")


def test_notebook_prose_states_no_result_numbers():
    """Markdown cells may quote the studies' own published figures and settings, not our results: those come
    from `findings` cells. A number with three decimals in prose is a result someone typed, and so is a run time."""
    for nb in sorted(paths.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        for cell in json.loads(nb.read_text())["cells"]:
            if cell["cell_type"] == "markdown":
                text = "".join(cell["source"])
                typed = re.findall(r"(?<![\w.])\d\.\d{3}(?![\w.])", text)
                assert not typed, f"{nb.name}: {typed[:3]} in a markdown cell"
                # run times are measurements too: the README's findings show the measured ones
                timed = re.findall(r"\d+(?:\.\d+)?\s*(?:s|min|minutes?|seconds?|hours?)\b[^.|]*\bcores?\b", text)
                assert not timed, f"{nb.name}: {timed[:2]} in a markdown cell"


def _published(name: str):
    import pandas as pd
    return pd.read_csv(report.published_dir(QUICK) / f"{name}.csv")


def test_every_published_dense_reference_learned_on_every_seed():
    """The ticket study's dense nets, the structured study's student and teacher and the transfer study's dense
    nets on both datasets reach the stated floor on every seed, so none of their claims is "not testable" because
    its reference did not learn, and none rests on one that barely did."""
    floor = QUICK.evidence.learned_auc
    tickets = _published("tickets")
    structured = _published("structured")
    transfer = _published("transfer")
    dense = {
        "tickets": tickets[tickets.arm == "dense"],
        "structured": structured[(structured.arm == "dense") & structured.role.str.contains("student|teacher")],
        "transfer": transfer[transfer.kind == "dense"],
    }
    for name, rows in dense.items():
        assert len(rows) > 0, name
        low = rows[rows.auc < floor]
        assert low.empty, f"{name}: dense runs below the floor {floor}:\n{low.to_string()}"
    assert set(dense["tickets"].seed) == set(QUICK.lottery.seeds)
    assert set(dense["structured"].seed) == set(QUICK.structured.seeds)
    assert set(dense["transfer"].seed) == set(QUICK.transfer.seeds) and dense["transfer"].target.nunique() == 2
    for study in ("tickets", "structured", "gradcam", "imagenet", "transfer"):
        verdicts = _published(f"{study}_verdicts")
        unlearned = verdicts[verdicts.verdict.str.contains("did not learn")]
        assert unlearned.empty, f"{study}: {unlearned.claim.tolist()}"


def test_the_published_face_choice_meets_the_goal_of_real_footage():
    """benchmarks/face_choice.py's table behind the README: the evidence rule chooses the true face in >= 98 % of
    frames with a face of at least min_size, never another box, and no crop from a frame without a face."""
    from dflite.studies import face_choice

    summary = face_choice.summary(_published(face_choice.NAME)).loc["evidence"]
    assert summary["face frames"] >= 200 and summary["frames without a face"] >= 24
    assert summary["true face"] >= 0.98, summary
    assert summary["another box"] == 0 and summary["crop made there"] == 0, summary


def test_the_gpu_check_covers_every_standard_recipe_and_its_ratios_follow_its_rates():
    # results/standard/gpu_check/ was written on a GPU machine (benchmarks/gpu_check.sh); CI has none, so this
    # checks the committed table against the profile it claims to measure, not the GPU.
    import pandas as pd
    from dflite.studies import tuning

    folder = paths.ROOT / "results" / "standard" / "gpu_check"
    table = pd.read_csv(folder / "train_throughput.csv")
    standard = resolve("standard")
    assert sorted(zip(table.recipe, table.model)) == sorted(tuning.recipes(standard))
    for _, row in table.iterrows():
        cfg = tuning.profile_recipe(standard, row.recipe, row.model)
        assert (row.px, row.batch) == (cfg.input_size, cfg.batch_size)
        for part in ("model", "loop"):
            assert abs(row[f"{part} bf16/fp32"] - row[f"{part} bf16"] / row[f"{part} fp32"]) < 0.01
    assert table.device.str.contains("H200|A100|H100|GPU|NVIDIA").all()
    env = json.loads((folder / "env.json").read_text())
    assert env["device"] != "cpu" and "exit 0" in (folder / "stages.txt").read_text()


def test_publishing_refuses_numbers_changed_after_the_reproduce_run(tmp_path, monkeypatch):
    """make test's nbval re-executes notebook 04, which times the latencies again: publishing its deploy.csv would
    publish numbers no executed notebook shows. An unchanged rewrite keeps the file as it was."""
    import os

    import pandas as pd
    from dflite import reproduce
    from dflite.engine.runs import write_results

    monkeypatch.setenv("DFLITE_DATA", str(tmp_path / "data"))
    source = report.results_dir(QUICK)
    shutil.copytree(report.published_dir(QUICK), source)
    for name in report.PUBLISHED:
        os.utime(source / f"{name}.csv", (1e9, 1e9))  # written before the notebooks ended
    reproduce.mark_executed(QUICK.name, "04_structured_pruning_kd")
    assert report.changed_after_reproduce(source) == []
    deploy = pd.read_csv(source / "deploy.csv", index_col="model", keep_default_na=False)
    write_results(QUICK.name, "deploy", deploy)  # the same numbers: the file is not touched
    assert (source / "deploy.csv").stat().st_mtime == 1e9
    deploy["ms"] = deploy["ms"] * 1.1  # timed again
    write_results(QUICK.name, "deploy", deploy)
    assert report.changed_after_reproduce(source) == ["deploy.csv"]
    before = (report.published_dir(QUICK) / "deploy.csv").read_text()
    try:
        report.publish(QUICK)
    except ValueError as e:
        assert "deploy.csv" in str(e) and "--force" in str(e)
    else:
        raise AssertionError("published numbers changed after the reproduce run")
    assert (report.published_dir(QUICK) / "deploy.csv").read_text() == before  # nothing copied
    reproduce.mark_executed(QUICK.name, "04_structured_pruning_kd")  # notebook 04 executed again: it shows them
    assert report.changed_after_reproduce(source) == []
