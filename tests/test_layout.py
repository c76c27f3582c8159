"""The package's shape: lower groups never import higher ones; stored notebook figures stay modest."""
import ast
import base64
import json

from dflite import paths

LIB = paths.ROOT / "lib" / "dflite"
# Each group may import itself, the top-level helpers and the groups listed before it.
ORDER = ["data", "nets", "engine", "compress", "experiments", "analysis", "detect", "studies"]
TOP = {"paths", "config", "folders", "parallel", "progress", "__version__"}


def _imports(path):
    """dflite modules a file imports, as their first name under dflite (group or top module)."""
    here = path.relative_to(LIB).parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(here[:len(here) - node.level + 1])
                parts = base + (node.module.split(".") if node.module else [])
                names = [parts] if node.module else [base + [a.name] for a in node.names]
            elif (node.module or "").startswith("dflite"):
                names = [node.module.split(".")[1:]] if "." in node.module else [[a.name] for a in node.names]
            else:
                continue
            found |= {n[0] for n in names if n}
    return found


def test_lower_groups_never_import_higher_ones():
    for i, group in enumerate(ORDER):
        allowed = set(ORDER[:i + 1]) | TOP
        for path in (LIB / group).rglob("*.py"):
            wrong = _imports(path) - allowed
            assert not wrong, f"{path.relative_to(LIB)} imports {sorted(wrong)}"


def test_stored_notebook_figures_are_small():
    for nb in sorted(paths.NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        for cell in json.loads(nb.read_text())["cells"]:
            for out in cell.get("outputs", []):
                for kind, data in out.get("data", {}).items():
                    if kind.startswith("image/"):
                        size = len(base64.b64decode("".join(data)))
                        assert size < 150_000, f"{nb.name}: a {kind} figure of {size // 1000} kB"


STUDIES = ("datasets", "preprocessing", "baselines", "lottery", "structured", "transfer", "gradcam", "video")
CLAIMS = ("lottery", "structured", "transfer", "gradcam")  # the studies whose notebooks judge claims
FINDINGS = ("baselines", "lottery", "structured", "transfer", "gradcam", "video")  # shown in the README


def test_every_study_has_the_same_verbs_on_a_resolved_profile():
    import importlib
    import inspect

    for name in STUDIES:
        study = importlib.import_module(f"dflite.studies.{name}")
        verbs = ("run", "summary") + (("verdicts",) if name in CLAIMS else ()) + (("findings",) if name in FINDINGS
                                                                                  else ())
        for verb in verbs:
            assert callable(getattr(study, verb, None)), f"studies.{name} has no {verb}()"
        first = next(iter(inspect.signature(study.run).parameters.values()))
        assert first.name == "p" and first.annotation in ("Profile", "config.Profile"), f"studies.{name}.run"


def test_no_module_looks_a_profile_up_by_name_below_the_edge():
    # The profile is resolved once (notebook, CLI) and passed down: only config and the edges name profiles.
    edges = {"config.py", "cli.py", "reproduce.py"}
    for path in LIB.rglob("*.py"):
        if path.name not in edges:
            assert "get_profile(" not in path.read_text(), f"{path.relative_to(LIB)} calls get_profile"
