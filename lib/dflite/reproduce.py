"""Run the numbered notebooks in order with papermill, parameters from notebooks/profiles/<profile>.yaml."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import yaml

from . import paths
from .folders import write_json


def notebooks(only=None) -> list:
    """notebooks/NN_*.ipynb in order, optionally only those whose NN is in `only`."""
    found = sorted(paths.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if only:
        wanted = {o.strip().zfill(2) for o in only}
        unknown = wanted - {p.name[:2] for p in found}
        if unknown:
            raise ValueError(f"no notebook numbered {', '.join(sorted(unknown))} in {paths.show(paths.NOTEBOOKS)}")
        found = [p for p in found if p.name[:2] in wanted]
    return found


def profile_parameters(profile: str) -> dict:
    """{notebook stem: parameters} from the profile file; `all` applies to every notebook."""
    path = paths.NOTEBOOKS / "profiles" / f"{profile}.yaml"
    if not path.is_file():
        have = sorted(p.stem for p in (paths.NOTEBOOKS / "profiles").glob("*.yaml"))
        raise ValueError(f"no profile file {paths.show(path)}; profiles: {', '.join(have)}")
    return yaml.safe_load(path.read_text()) or {}


def parameters_for(profile: str, stem: str) -> dict:
    table = profile_parameters(profile)
    return {"profile": profile, **(table.get("all") or {}), **(table.get(stem) or {})}


def run(profile: str = "quick", only=None, out_dir=None, progress: bool = True, data_root=None,
        overrides=None) -> list:
    """Execute the notebooks; stop at the first failure with the failing cell's error and the notebook path.

    `data_root` replaces every notebook's data_root (made absolute: notebooks run in notebooks/). `overrides`
    names a YAML file of profile changes (config.read_overrides) every notebook applies; the changed profile
    runs under its own name (data/runs/<name>/)."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    from .config import resolve

    if data_root:
        check_data_root(profile, notebooks(only), data_root)
    # The whole override file is checked here, before any notebook runs (a bad key fails now, not in notebook 00).
    name = resolve(profile, overrides or "").name
    out_dir = Path(out_dir or paths.runs_dir(name) / "notebooks")
    out_dir.mkdir(parents=True, exist_ok=True)
    done = []
    for nb in notebooks(only):
        target = out_dir / nb.name
        params = parameters_for(profile, nb.stem)
        if data_root:
            params["data_root"] = str(Path(data_root).resolve())
        if overrides:
            params["overrides"] = str(Path(overrides).resolve())
        print(f"[{name}] {nb.stem} -> {paths.show(target)}", flush=True)
        started = time.monotonic()
        try:
            # The cells' own progress lines (dflite.progress) and printed text reach this log as they come;
            # papermill's cell bar is kept for a terminal, where it redraws in place.
            pm.execute_notebook(str(nb), str(target), parameters=params, cwd=str(paths.NOTEBOOKS),
                                progress_bar=progress and sys.stderr.isatty(), kernel_name="python3",
                                stdout_file=sys.stdout if progress else None,
                                stderr_file=sys.stderr if progress else None)
        except PapermillExecutionError as e:
            print(f"\nFAILED: {nb.name}, cell {e.exec_count}: {e.ename}: {e.evalue}", file=sys.stderr)
            print("".join(e.traceback[-3:]) if e.traceback else "", file=sys.stderr)
            print(f"executed notebook: {paths.show(target)}", file=sys.stderr)
            raise SystemExit(1) from None
        done.append(target)
        record_time(name, target)
        mark_executed(name, nb.stem)
        print(f"[{name}] {nb.stem} done in {(time.monotonic() - started) / 60:.1f} min", flush=True)
    return done


def check_data_root(profile: str, chosen, data_root) -> None:
    """A data root given to notebooks that would not read it is an error, not a silent run on synthetic data; so is
    a root that does not exist. Raises ValueError naming the profile file that decides which data a notebook reads."""
    synthetic = [nb.stem for nb in chosen
                 if parameters_for(profile, nb.stem).get("dataset", "synthetic") == "synthetic"]
    if synthetic:
        raise ValueError(f"--data-root {data_root} would be ignored: profile {profile!r} runs "
                         f"{', '.join(synthetic)} on the built-in synthetic set (dataset in "
                         f"notebooks/profiles/{profile}.yaml). For real data use the paper profile "
                         "(make reproduce PROFILE=paper DATA_ROOT=...) or set dataset there.")
    if not Path(data_root).is_dir():
        raise ValueError(f"--data-root {data_root} is not a folder: point it at the dataset's root (see the README, "
                         "'Real data')")


def record_time(profile: str, executed) -> None:
    """Keep each notebook's last execution time (papermill's own measure) in the profile's results/timings.csv,
    so the README can show run times that were measured, not typed. A notebook that reused its runs records its
    short time: the file says what the last execution took, nothing more."""
    executed = Path(executed)
    if not executed.is_file():  # nothing executed (papermill stubbed out): nothing measured
        return
    seconds = json.loads(executed.read_text())["metadata"].get("papermill", {}).get("duration")
    if seconds is None:
        return
    path = paths.runs_dir(profile) / "results" / paths.TIMINGS
    rows = {}
    if path.is_file():
        rows = dict(line.split(",") for line in path.read_text().splitlines()[1:] if line)
    rows[executed.stem] = f"{float(seconds):.0f}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("notebook,seconds\n" + "".join(f"{k},{v}\n" for k, v in sorted(rows.items())))


def mark_executed(profile: str, stem: str) -> None:
    """Note when a notebook of the profile last finished executing for `dflite reproduce` or `--refresh`
    (results/executed.json, seconds since the epoch): results files changed after every such time were made by
    another execution, which `dflite results --publish` refuses (report.changed_after_reproduce)."""
    path = paths.runs_dir(profile) / "results" / paths.EXECUTED
    done = json.loads(path.read_text()) if path.is_file() else {}
    write_json(path, {**done, stem: round(time.time(), 3)})


def strip_run_metadata(path) -> None:
    """Drop papermill's timing metadata and the cells' stderr (progress lines with this run's times) from a
    notebook, keeping the other outputs and execution counts."""
    path = Path(path)
    nb = json.loads(path.read_text())
    nb["metadata"].pop("papermill", None)
    for cell in nb["cells"]:
        cell.get("metadata", {}).pop("papermill", None)
        cell.get("metadata", {}).pop("execution", None)
        if "outputs" in cell:
            cell["outputs"] = [o for o in cell["outputs"] if not (o.get("output_type") == "stream"
                                                                  and o.get("name") == "stderr")]
        if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            raise ValueError(f"{path} has injected parameters; refresh with the quick profile defaults only")
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def refresh(only=None) -> None:
    """Re-execute notebooks in place with their own (quick) defaults and keep the outputs as stored results."""
    import papermill as pm

    for nb in notebooks(only):
        print(f"refreshing {paths.show(nb)}", flush=True)
        pm.execute_notebook(str(nb), str(nb), cwd=str(paths.NOTEBOOKS), progress_bar=sys.stderr.isatty(),
                            kernel_name="python3", stdout_file=sys.stdout, stderr_file=sys.stderr)
        mark_executed("quick", nb.stem)  # the committed notebooks run the quick defaults
        strip_run_metadata(nb)
