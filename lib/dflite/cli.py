"""The `dflite` command (also `python -m dflite`)."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import paths


def _synth(args) -> int:
    from .config import resolve
    from .data.synth import OutputFolderError, generate

    p = resolve(args.profile, data_seed=args.seed)  # another seed: its own folder and name (quick-data1)
    out = args.out or paths.synth_dir(p.name)
    started = time.perf_counter()
    try:
        summary = generate(out, profile=p.name, seed=args.seed, force=args.force, workers=args.workers, cfg=p.synth)
    except OutputFolderError as e:
        print(f"dflite synth: {e}", file=sys.stderr)
        return 2
    print(f"synthetic data ({args.profile}, seed {args.seed}) in {paths.show(out)} "
          f"[{time.perf_counter() - started:.1f} s]")
    print(summary.ffpp["videos"].to_string())
    print("split pairs:", summary.ffpp["split_pairs"])
    print(summary.openforensics.to_string())
    return 0


def _reproduce(args) -> int:
    from . import reproduce

    only = args.only.split(",") if args.only else None
    if args.refresh:
        if args.data_root or args.overrides:
            print("error: --refresh re-executes the committed notebooks with their own (quick) defaults; it takes "
                  "no --data-root or --overrides", file=sys.stderr)
            return 2
        reproduce.refresh(only)
    else:
        try:
            reproduce.run(args.profile, only, data_root=args.data_root, overrides=args.overrides)
        except ValueError as e:  # a data root the notebooks would not read, an unknown notebook or profile,
            # an override file that does not exist or does not fit the profile
            print(f"error: {e}", file=sys.stderr)
            return 2
    return 0


def _extract(args) -> int:
    from .config import override, resolve
    from .data.extract import IncompleteStoreError, extract, parse_shard, store_dir
    from .data.sources import DatasetLayoutError
    from .data.store import synthetic_profile
    from .folders import OutputFolderError

    cfg = resolve(args.profile).extract
    changes = {k: v for k, v in (("sampling", args.sampling), ("frames", args.frames), ("size", args.size),
                                 ("compression", args.compression), ("split_mode", args.split),
                                 ("face_choice", args.faces),
                                 ("dfdc_val_parts", _names(args.dfdc_val_parts)),
                                 ("dfdc_test_parts", _names(args.dfdc_test_parts))) if v is not None}
    cfg = override(cfg, **changes)
    # A synthetic set of another seed (quick-data1) gets its store under that name, never the default seed's.
    made_for = synthetic_profile(args.root)
    out = args.out or store_dir(made_for or args.profile, args.dataset, cfg, synthetic=made_for is not None)
    try:
        shard = parse_shard(args.shard) if args.shard else None
        store = extract(args.dataset, args.root, out, cfg, workers=args.workers, force=args.force, shard=shard,
                        merge=args.merge)
    except (DatasetLayoutError, OutputFolderError, IncompleteStoreError, ValueError) as e:
        print(f"dflite extract: {e}", file=sys.stderr)
        return 2
    if store is None:
        print(f"shard {args.shard} done in {paths.show(out)}; other shards still have media to do. The last "
              "shard to finish assembles the store (or run again with --merge once all are done).")
        return 0
    s = store.summary
    print(f"crop store {paths.show(out)}: {s['crops']} crops from {s['media'] - s['failed']}/{s['media']} media, "
          f"detection rate {s['detection_rate']}" + ("" if store.reused else f", {s['crops_per_second']} crops/s"))
    if store.reused:  # its timings belong to the run that made it
        print("already finished with these settings and media: nothing to do (--force makes it again)")
    else:
        print("seconds per stage:", s["stage_seconds"])
    if s.get("skipped"):
        print(f"{s['skipped']} media in no split were skipped (see skipped.csv)")
    if len(store.failures):
        print("failures by reason:", store.failures["reason"].value_counts().to_dict(), "(see failures.csv)")
    if s["media"] and s["failed"] == s["media"]:
        print(f"dflite extract: every one of the {s['media']} media failed; nothing to train on "
              f"(reasons in {paths.show(out)}/failures.csv)", file=sys.stderr)
        return 1
    return 0


def _names(text):
    return None if text is None else tuple(v.strip() for v in text.split(",") if v.strip())


def _train(args) -> int:
    from .config import override, resolve
    from .data.extract import load_store
    from .engine.runs import train_run
    from .engine.train import fit, input_size, seeded_model

    cfg = resolve(args.profile).recipe(args.model)
    if args.epochs:
        cfg = override(cfg, epochs=args.epochs, warmup_epochs=min(cfg.warmup_epochs, args.epochs))
    if args.input_size is not None:
        cfg = override(cfg, input_size=args.input_size)
    if args.threads:
        cfg = override(cfg, cpu_threads=args.threads)
    if args.target:
        cfg = override(cfg, target=args.target)
    try:
        store = load_store(args.store)
        dataset = args.dataset or ("synthetic" if store.synthetic else store.kind or "data")
        run = train_run(args.profile, "train", args.model, dataset, cfg, store, args.seed,
                        input_size(cfg, args.model), folder=args.out)
        result = fit(seeded_model(args.model, cfg, args.seed), store, cfg, run)
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        print(f"dflite train: {e}", file=sys.stderr)
        return 2
    if result is None:  # a non-zero rank under torchrun
        return 0
    print(f"run {paths.show(result.run_dir)}")
    print("test split: " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                     for k, v in result.metrics.items()))
    return 0


def _inspect(args) -> int:
    from .config import resolve
    from .data.sources import DatasetLayoutError, get_adapter

    try:
        found = get_adapter(args.dataset).inspect(args.root, resolve(args.profile).extract)
    except DatasetLayoutError as e:
        print(f"dflite inspect: {e}", file=sys.stderr)
        return 2
    for name, table in found.tables.items():
        print(f"{name}:")
        print(table.to_string())
    for name, value in found.facts.items():
        print(f"{name}: {value}")
    if len(found.skipped):
        print(f"warning: {len(found.skipped)} files will be skipped:", found.skipped["reason"].value_counts().to_dict())
        print(found.skipped.head(20).to_string(index=False))
    return 0


def _detect(args) -> int:
    from . import detect
    from .config import resolve

    p = resolve(args.profile)
    try:
        detector = detect.load_detector(args.run, args.weights, p.extract)
        rule = detect.Rule(args.rule, args.threshold, args.share, args.min_frames)
        if detector.synthetic:
            print(f"dflite detect: {detector.source} was trained on synthetic data (or nothing says otherwise): "
                  "it is not a detector for real-world videos", file=sys.stderr)
        # Uniform sampling takes the profile's frame count unless told; other samplings take no count.
        frames = args.frames or (p.video.frames if detector.extract.sampling == "uniform" else None)
        reports = detect.detect_all(args.paths, detector, args.out, frames, rule, progress=not args.quiet,
                                    force=args.force, faces=args.faces, attribute=args.attribute)
    except (ValueError, FileNotFoundError) as e:
        print(f"dflite detect: {e}", file=sys.stderr)
        return 2
    for r in reports:
        print(f"{r['input']}: {detect_line(r)}")
    print(f"reports in {args.out}/ (summary.json)")
    return 1 if any(r["verdict"] == "error" for r in reports) else 0


def detect_line(r: dict) -> str:
    """One report in words: the verdict, the rule's score (what the verdict compares), the mean face probability
    and the face frames behind it, or why there is no verdict."""
    if r["verdict"] == "error":
        return f"error ({r['error']})"
    if r["score"] is None:
        return r["verdict"] + (f" ({r['reason']})" if r.get("reason") else "")
    method = ""
    if r.get("attribution", {}).get("method"):
        a = r["attribution"]
        share = f", {a['given_fake']:.3f} of the fake" if a.get("given_fake") is not None else ""
        method = f"; likeliest method {a['method']} (probability {a['probability']:.3f}{share})"
    if r["kind"] == "image":
        return f"{r['verdict']} {r['score']:.3f} (face probability{method})"
    what = "share of face frames at or above the threshold" if r["rule"]["kind"] == "frames" else "mean frame score"
    return (f"{r['verdict']} {r['score']:.3f} ({what}; mean face probability {r['mean_face_score']:.3f}; "
            f"{r['frames_with_face']} of {r['frames_sampled']} frames with a face{method})")


def _number(cast, ok, expected: str):
    """An argparse type: the text as `cast` (int or float), kept where ok(value); argparse names the option in
    its error."""
    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if cast is int else 'a number'}, "
                                             f"got {text!r}") from None
        if not ok(value):  # NaN fails every comparison, so it is refused too
            raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
        return value
    return parse


def _at_least(low: int):
    return _number(int, lambda v: v >= low, f"at least {low}")


def _fraction(low_open: bool):
    """A number in [0, 1], or in (0, 1] when `low_open`."""
    if low_open:
        return _number(float, lambda v: 0 < v <= 1, "above 0 to 1")
    return _number(float, lambda v: 0 <= v <= 1, "0 to 1")


_positive = _number(float, lambda v: v > 0, "above 0")
_port = _number(int, lambda v: 1 <= v <= 65535, "a port from 1 to 65535")


def _demo(args) -> int:
    from .detect import demo

    try:
        import gradio  # noqa: F401
    except ImportError:
        print("dflite demo: needs the demo extra: pip install -e '.[demo]' (make demo does it)", file=sys.stderr)
        return 2
    if args.run and not (Path(args.run) / "best.safetensors").is_file():
        print(f"dflite demo: {args.run}: not a finished run folder (no best.safetensors)", file=sys.stderr)
        return 2
    print(f"dflite demo on http://{args.host}:{args.port} (Ctrl-C stops it)")
    demo.launch(args.run, args.host, args.port, args.max_mb, profile=args.profile)
    return 0


def _results(args) -> int:
    from .config import resolve
    from .studies import report

    p = resolve(args.profile)
    try:
        if args.publish:
            print(f"published {paths.show(report.publish(p, force=args.force))}/ and rewrote the README's findings")
        elif args.check:
            stale = report.stale_sections(p)
            if stale:
                where = ", ".join(f"{report.SECTIONS[n]}'s {n}" for n in stale)
                print(f"dflite results: {where} differ from results/{p.name}/; run "
                      f"`dflite results --profile {p.name} --write-readme`", file=sys.stderr)
                return 1
            print(f"README.md's {p.name} headline and docs/findings.md match results/{p.name}/")
        elif args.write_readme:
            changed = report.write_readme(p)
            print(f"README.md's {p.name} headline and docs/findings.md {'rewritten' if changed else 'unchanged'}")
        else:
            print(report.findings(p))
    except (FileNotFoundError, ValueError) as e:
        print(f"dflite results: {e}", file=sys.stderr)
        return 2
    return 0


def _report(args) -> int:
    from . import site
    from .folders import OutputFolderError

    try:
        out = site.build(args.out, args.profile, args.force)
    except (OutputFolderError, FileNotFoundError) as e:
        print(f"dflite report: {e}", file=sys.stderr)
        return 2
    print(f"wrote {paths.show(out / 'index.html')}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .config import PROFILES
    from .data.sources import ADAPTERS
    from .nets.registry import list_models

    datasets = sorted(ADAPTERS)
    from . import __version__

    p = argparse.ArgumentParser(prog="dflite", description="Lightweight deepfake detection: data, study, tools.")
    p.add_argument("--version", action="version", version=f"dflite {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("synth", help="generate the built-in synthetic forensic dataset",
                       description="Write synthetic FF++-layout videos and OpenForensics-layout images with "
                                   "ground-truth boxes and masks. Reuses a finished set made with the same "
                                   "settings; refuses folders it did not make.")
    s.add_argument("--profile", default="quick", choices=sorted(PROFILES), help="dataset size (default: quick)")
    s.add_argument("--out", help="output folder (default: data/synth/<profile>, data/synth/<profile>-dataN for "
                                 "--seed N > 0)")
    s.add_argument("--seed", type=_at_least(0), default=0,
                   help="random seed; same seed and profile -> identical files (default: 0)")
    s.add_argument("--force", action="store_true", help="regenerate a set dflite made, even if it is complete")
    s.add_argument("--workers", type=_at_least(1), default=None, help="processes (default: CPU count, at most 8)")
    s.set_defaults(func=_synth)

    r = sub.add_parser("reproduce", help="execute the notebooks in order with papermill",
                       description="Run notebooks/NN_*.ipynb in order with parameters from "
                                   "notebooks/profiles/<profile>.yaml; executed copies go to "
                                   "data/runs/<profile>/notebooks/. Stops at the first failing cell.")
    r.add_argument("--profile", default="quick", choices=sorted(PROFILES), help="profile (default: quick)")
    r.add_argument("--only", help="comma-separated notebook numbers, e.g. 00,01")
    r.add_argument("--data-root", help="real dataset root for every notebook (overrides the profile file's data_root)")
    r.add_argument("--overrides", help="YAML file of profile changes every notebook applies (e.g. smaller budgets: "
                                       "tests/paper_smoke.yaml); runs under its own name in data/runs/")
    r.add_argument("--refresh", action="store_true",
                   help="re-execute the committed notebooks in place (quick defaults) to refresh stored outputs")
    r.set_defaults(func=_reproduce)

    e = sub.add_parser("extract", help="face crops from a dataset into a crop store",
                       description="Sample frames, detect faces (Haar), write square crops with index.csv, "
                                   "failures.csv and summary.json. Parallel and resumable.")
    e.add_argument("--dataset", required=True, choices=datasets)
    e.add_argument("--root", required=True, help="dataset root folder")
    e.add_argument("--out", help="crop store folder (default: data/crops/<profile>/<dataset>_<hash>)")
    e.add_argument("--profile", default="quick", choices=sorted(PROFILES), help="extraction settings (default: quick)")
    e.add_argument("--workers", type=_at_least(1), default=None, help="processes (default: CPU count, at most 8)")
    e.add_argument("--sampling", choices=["uniform", "capstone", "all"], help="override the profile's frame sampling")
    e.add_argument("--frames", type=_at_least(1), help="frames per video for uniform sampling")
    e.add_argument("--size", type=_at_least(8), help="crop side in pixels")
    e.add_argument("--faces", choices=["biggest", "evidence"],
                   help="which box is the face (default: the profile's, biggest as the capstone; evidence: boxes "
                        "with a pair of eyes, most confident first)")
    e.add_argument("--compression", choices=["raw", "c23", "c40"], help="FF++ compression level")
    e.add_argument("--split", choices=["official", "group", "leaky"], help="split mode (leaky: ablation only)")
    e.add_argument("--dfdc-val-parts", help="DFDC: part folders for val, e.g. 45,46 (default: 70/15/15 by original)")
    e.add_argument("--dfdc-test-parts", help="DFDC: part folders for test, e.g. 47,48,49")
    e.add_argument("--shard", help="K/N: process only shard K (0..N-1) of the media, e.g. $SLURM_ARRAY_TASK_ID/N; "
                                   "the shard that finds every media done assembles the store")
    e.add_argument("--merge", action="store_true", help="only assemble the store from finished shards")
    e.add_argument("--force", action="store_true", help="redo a store dflite made with other settings or another root")
    e.set_defaults(func=_extract)

    t = sub.add_parser("train", help="train and evaluate one detector on a crop store",
                       description="Train with the profile's recipe (warm-up + cosine, balanced sampling, "
                                   "augmentation), keep the best epoch by validation AUC, evaluate on the test "
                                   "split. Resumes an interrupted run; several GPUs or CPU processes under torchrun.")
    t.add_argument("--store", required=True, help="crop store folder (from `dflite extract`)")
    t.add_argument("--model", required=True, choices=list_models(), metavar="MODEL",
                   help=f"architecture: {', '.join(list_models())}")
    t.add_argument("--profile", default="quick", choices=sorted(PROFILES), help="training recipe (default: quick)")
    t.add_argument("--dataset", help="label in the run folder name (default: synthetic or the store's dataset)")
    t.add_argument("--seed", type=_at_least(0), default=0, help="training seed (default: 0)")
    t.add_argument("--epochs", type=_at_least(1), help="override the profile's epochs")
    t.add_argument("--input-size", type=_at_least(0), help="override the input size (0 = the model's own)")
    t.add_argument("--threads", type=_at_least(1),
                   help="torch threads on the CPU (default 1: results depend on the count)")
    t.add_argument("--target", choices=["label", "method"],
                   help="label: real or fake (the default); method: an attribution head naming real or which "
                        "manipulation method (for `dflite detect --attribute`)")
    t.add_argument("--out", help="run folder (default: data/runs/<profile>/train_<model>_<dataset>_<hash>/seed_<s>)")
    t.set_defaults(func=_train)

    d = sub.add_parser("detect", help="score videos, images or folders of them with a trained detector",
                       description="Sample frames, find faces (extract's own step), score each face, give each "
                                   "video a verdict, write a JSON report per input and an annotated mp4 per video. "
                                   "Detectors trained on the synthetic data are not real-world detectors.")
    d.add_argument("paths", nargs="+", help="videos, images or folders")
    src = d.add_mutually_exclusive_group(required=True)
    src.add_argument("--run", help="a finished run folder (its best weights)")
    src.add_argument("--weights", help="a weights file saved by dflite (safetensors with its spec)")
    d.add_argument("--out", default="detections", help="report folder (default: ./detections)")
    d.add_argument("--profile", default="quick", choices=sorted(PROFILES),
                   help="face settings for --weights (a run folder brings its own) and frames per video "
                        "(default: quick)")
    d.add_argument("--frames", type=_at_least(1), default=None,
                   help="frames sampled per video under uniform sampling (default: the profile's, 16); a detector "
                        "trained on the capstone's sampling refuses it")
    d.add_argument("--rule", default="frames", choices=["frames", "mean"],
                   help="verdict rule: frames (fake when at least --share of the face frames score at or above "
                        "--threshold; the default) or mean (fake when their mean score is at or above --threshold)")
    d.add_argument("--threshold", type=_fraction(False), default=0.5,
                   help="a face is fake at or above this probability (0 to 1; default 0.5)")
    d.add_argument("--share", type=_fraction(True), default=0.5,
                   help="frames rule: fake when this share of face frames are (above 0 to 1; default 0.5)")
    d.add_argument("--min-frames", type=_at_least(1), default=4,
                   help="face frames a video needs for a verdict, or all it sampled if fewer (default 4); "
                        "with fewer: no face found")
    d.add_argument("--faces", default="evidence", choices=["evidence", "biggest"],
                   help="which box is the face: evidence (boxes with a pair of eyes, most confident first; the "
                        "default) or biggest (the capstone's rule, fooled by cluttered backgrounds)")
    d.add_argument("--attribute", action="store_true",
                   help="also name the manipulation method most likely behind each input, with its probability "
                        "(needs an attribution head: a run of notebook 08's attribution study)")
    d.add_argument("--force", action="store_true", help="score again inputs whose reports in --out were made with "
                                                        "other settings (e.g. a new --threshold), overwriting them")
    d.add_argument("--quiet", action="store_true", help="no progress bar")
    d.set_defaults(func=_detect)

    w = sub.add_parser("demo", help="the web demo (Gradio): upload a video or an image, see the verdict",
                       description="Start the Gradio demo on a finished run folder (default: the newest quick "
                                   "CNN-5 baseline). Needs the demo extra.")
    w.add_argument("--run", help="run folder to start with (any other can be picked in the page)")
    w.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: 127.0.0.1, this machine; 0.0.0.0 to share on the network)")
    w.add_argument("--port", type=_port, default=7860, help="port, 1 to 65535 (default: 7860)")
    w.add_argument("--max-mb", type=_positive, default=100, help="largest upload in MB (default: 100)")
    w.add_argument("--profile", default="quick", choices=sorted(PROFILES),
                   help="default run and frames per video (default: quick)")
    w.set_defaults(func=_demo)

    o = sub.add_parser("results", help="the findings, generated from the published results files",
                       description="Print the findings of a profile as Markdown, generated from results/<profile>/ "
                                   "(the published results files); --publish copies data/runs/<profile>/results/ "
                                   "there first; the README's findings section is this text.")
    o.add_argument("--profile", default="quick", choices=sorted(PROFILES), help="profile (default: quick)")
    mode = o.add_mutually_exclusive_group()
    mode.add_argument("--markdown", action="store_true", help="print the findings (the default)")
    mode.add_argument("--publish", action="store_true",
                      help="copy this machine's results files into results/<profile>/ and rewrite the README section")
    mode.add_argument("--write-readme", action="store_true",
                      help="rewrite the README's headline and docs/findings.md from results/<profile>/")
    o.add_argument("--force", action="store_true",
                   help="with --publish: publish results files changed after `dflite reproduce` last ran (e.g. "
                        "latencies timed again by make test's nbval), which the executed notebooks do not show")
    mode.add_argument("--check", action="store_true",
                      help="exit 1 if the README's headline or docs/findings.md differ from the files")
    o.set_defaults(func=_results)

    h = sub.add_parser("report", help="the executed notebooks as a static HTML site (offline)",
                       description="Render every committed notebook with its stored outputs to <out>/<notebook>.html "
                                   "(nbconvert) and write <out>/index.html: each notebook's title and summary, then "
                                   "the findings generated from results/<profile>/. Open index.html in a browser.")
    h.add_argument("--out", help="output folder (default: data/report)")
    h.add_argument("--profile", default="quick", choices=sorted(PROFILES), help="whose findings (default: quick)")
    h.add_argument("--force", action="store_true", help="write into a non-empty folder dflite did not make")
    h.set_defaults(func=_report)

    titles = ", ".join(a.title for a in ADAPTERS.values())
    i = sub.add_parser("inspect", help="report what a real dataset root holds",
                       description=f"Check a dataset root ({titles}) against its layout, count what it holds "
                                   "and list every file extraction will skip, with the reason.")
    i.add_argument("--dataset", required=True, choices=datasets)
    i.add_argument("--root", required=True, help="dataset root folder")
    i.add_argument("--profile", default="quick", choices=sorted(PROFILES),
                   help="extraction settings (FF++: the compression whose split coverage is checked; "
                        "default: quick)")
    i.set_defaults(func=_inspect)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
