"""The config schema: every key any stage or command reads, declared once.

One declaration per key (``K(name, type, default, ...)``): its dotted name, its type(s), its default,
the allowed values or range and a one-line meaning. ``common.config.load_config`` uses it to

- refuse an unknown key (in a config file, a base file or ``--set``), naming the closest valid key;
- fill every key the config does not set with its default (defaults live here, nowhere else);
- check every value's type, allowed values and range after ``${key}`` references are resolved.

Types: ``int``, ``float`` (an int is accepted), ``str``, ``bool``, ``null``, ``list``, ``map``
(a mapping whose keys are listed in ``keys``, or any keys when ``keys`` is None), ``path`` (a string
naming a file or folder; relative values are taken from the repository root). A key may accept
several types, e.g. ``("int", "null")``. ``items`` is the type of a list's items, ``length`` the
allowed list lengths; ``lo``/``hi`` bound a number (or each item of a list of numbers).

A default may refer to other keys (``${seed}``) or to a stage's folder (``${stage:08}`` =
``<output_dir>/08_scores``, from the stage table). ``UNSET`` means "no default: the key is absent
unless a config sets it" (a detector option whose default depends on the detector).

Declare a new key by adding one ``K(...)`` line to ``KEYS`` below (and the README/docs line that a
user reads); code then reads it with ``cfg.get("section.key")`` with no default of its own.
"""
from __future__ import annotations

import copy
import difflib
import re
from dataclasses import dataclass
from typing import Any, Callable

UNSET = object()   # no default: absent unless set


@dataclass(frozen=True)
class K:
    name: str                         # dotted key, e.g. "slr.calibration"
    type: str | tuple                 # one type name or a tuple of accepted type names
    default: Any                      # a value, a ${ref} string, or UNSET
    help: str = ""                    # one-line meaning
    choices: tuple | None = None      # allowed values (for str/int)
    lo: float | None = None           # inclusive lower bound of a number / of each list item
    hi: float | None = None           # inclusive upper bound
    items: str | tuple | None = None  # type(s) of list items
    length: tuple | None = None       # allowed list lengths
    keys: tuple | None = None         # allowed keys of a map value (None = any)
    pattern: str | None = None        # regex a str value must match fully
    check: Callable | None = None     # extra check: value -> error text or None

    @property
    def types(self) -> tuple:
        return self.type if isinstance(self.type, tuple) else (self.type,)


_SBI_KEYS = ("rgb_shift", "hue_shift_deg", "sat_scale", "brightness", "contrast", "downscale_factors",
             "sharpen_alpha", "sharpen_prob", "translate", "scale", "elastic_alpha", "elastic_sigma",
             "hull_variants", "hull_deform", "blur_kernels", "blend_ratios")
_CRITERION_KEYS = ("characteristic", "metric", "max", "min", "level")
# the metrics a validation criterion may name (the report's matrix and the robustness stage judge these)
CRITERION_METRICS = ("cllr", "cllr_min", "eer", "cllr_cal", "auc", "misleading_hp", "misleading_hd", "elub_range",
                     "direction_changes", "largest_drop_log10", "devpav", "llr_overestimation")
_DEFAULT_CRITERIA = [
    {"characteristic": "accuracy", "metric": "cllr", "max": 0.5},
    {"characteristic": "discriminating power", "metric": "cllr_min", "max": 0.3},
    {"characteristic": "discriminating power", "metric": "eer", "max": 0.1},
    {"characteristic": "calibration", "metric": "cllr_cal", "max": 0.2},
]
_DEFAULT_VERBAL_SCALE = [
    [0.0, "the findings do not support one proposition over the other"],
    [0.30103, "weak support for the proposition that {h}"],
    [1.0, "moderate support for the proposition that {h}"],
    [2.0, "moderately strong support for the proposition that {h}"],
    [3.0, "strong support for the proposition that {h}"],
    [4.0, "very strong support for the proposition that {h}"],
    [6.0, "extremely strong support for the proposition that {h}"],
]
_SPLIT_NAMES = ("train", "val", "calib", "test")


def _criteria_check(value) -> str | None:
    for i, c in enumerate(value or []):
        if not isinstance(c, dict) or "metric" not in c or not ({"max", "min"} & set(c)):
            return f"item {i} must be a mapping with at least 'metric' and 'max' (or 'min'), got {c!r}"
        bad = sorted(set(c) - set(_CRITERION_KEYS))
        if bad:
            return f"item {i} has unknown key(s) {bad}; allowed: {list(_CRITERION_KEYS)}"
        if c["metric"] not in CRITERION_METRICS:
            return f"item {i}: unknown metric {c['metric']!r}; known: {list(CRITERION_METRICS)}"
        if c.get("level") not in (None, "frame", "video"):
            return f"item {i}: level must be frame or video, got {c.get('level')!r}"
        for bound in ("max", "min"):
            if bound in c and (isinstance(c[bound], bool) or not isinstance(c[bound], (int, float))):
                return f"item {i}: {bound} must be a number, got {c[bound]!r}"
    return None


def _verbal_scale_check(value) -> str | None:
    for i, row in enumerate(value or []):
        if not (isinstance(row, list) and len(row) == 2 and isinstance(row[0], (int, float))
                and isinstance(row[1], str)):
            return f"item {i} must be [lowest |log10 LR|, words], got {row!r}"
    return None


def _degradations_check(value) -> str | None:
    known = ("jpeg", "downscale", "blur", "noise")
    for family, strengths in (value or {}).items():
        if family not in known:
            close = difflib.get_close_matches(family, known, n=1)
            return (f"unknown degradation family '{family}'" + (f"; did you mean '{close[0]}'?" if close else "")
                    + f" (known: {', '.join(known)})")
        if not isinstance(strengths, list) or not all(isinstance(s, (int, float)) and not isinstance(s, bool)
                                                       for s in strengths):
            return f"'{family}' must be a list of numbers (strengths), got {strengths!r}"
    return None


_EXTERNAL_KEYS = ("name", "root", "input", "person_regex", "max_frames")


def _external_check(value) -> str | None:
    names = set()
    for i, e in enumerate(value or []):
        if not isinstance(e, dict) or not isinstance(e.get("name"), str) or not isinstance(e.get("root"), str):
            return f"item {i} must be a mapping with 'name' and 'root' (texts), got {e!r}"
        bad = sorted(set(e) - set(_EXTERNAL_KEYS))
        if bad:
            return f"item {i} has unknown key(s) {bad}; allowed: {list(_EXTERNAL_KEYS)}"
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", e["name"]) or e["name"] in names:
            return f"item {i}: name {e['name']!r} must be unique and use only letters, digits, '_', '.', '-'"
        names.add(e["name"])
        mf = e.get("max_frames")
        if mf is not None and (isinstance(mf, bool) or not isinstance(mf, int) or mf < 1):
            return f"item {i}: max_frames must be an integer >= 1 or null, got {mf!r}"
        for k in ("input", "person_regex"):
            if e.get(k) is not None and not isinstance(e[k], str):
                return f"item {i}: {k} must be a text or null, got {e[k]!r}"
    return None


def _ratios_check(value) -> str | None:
    if any(r <= 0 for r in value):
        return f"every ratio must be > 0, got {value}"
    if abs(sum(value) - 1.0) > 1e-6:
        return f"the ratios must sum to 1, got {value} (sum {sum(value):g})"
    return None


KEYS: tuple[K, ...] = (
    # ------------------------------------------------------------------------------------ top level
    K("base", ("path", "null"), None, "a base config (relative to this file's folder) whose values this file overrides"),
    K("experiment", ("str", "null"), None, "experiment name (report title); null -> the output folder's name"),
    K("seed", "int", 1024, "the seed every random choice derives from"),
    K("output_dir", "path", "outputs/uadfv", "root of every stage's output folder <output_dir>/<NN_stage>/"),
    K("device", "str", "auto", "auto | cpu | cuda | cuda:N", pattern=r"auto|cpu|cuda(:\d+)?"),
    # ------------------------------------------------------------------------------------ demo (stage 00)
    K("demo.enabled", "bool", False, "stage 00 builds the embedded demo's videos (demo config only)"),
    K("demo.persons", "int", 10, "portrait variants; each person gets a real and a fake video", lo=3),
    K("demo.frames", "int", 12, "frames per demo video", lo=1),
    K("demo.frame_size", "int", 320, "square demo frame side, px", lo=128),
    K("demo.fps", ("int", "float"), 10, "demo video frame rate", lo=1),
    K("demo.motion.shift", "float", 0.04, "peak translation, fraction of the frame side", lo=0),
    K("demo.motion.rotation_deg", "float", 5.0, "peak rotation, degrees", lo=0),
    K("demo.motion.zoom", "float", 0.06, "peak relative zoom", lo=0),
    K("demo.lighting.gain", "float", 0.15, "peak relative brightness gain change", lo=0),
    K("demo.lighting.gamma", "float", 0.15, "peak gamma change (gamma = 1 +- this)", lo=0),
    K("demo.lighting.gradient", "float", 0.15, "peak left-right lighting gradient (relative)", lo=0),
    K("demo.jpeg_quality", "list", [50, 95], "per-video JPEG quality range [low, high]", items="int", length=(2,),
      lo=1, hi=100),
    K("demo.face_fraction", "list", [0.35, 0.6], "face side as a fraction of the frame side [low, high]",
      items="float", length=(2,), lo=0.05, hi=1.0),
    K("demo.sbi", "map", {}, "self_blend options for the demo's fakes (keys of training.sbi; {} = SBI paper defaults)",
      keys=_SBI_KEYS),
    # ------------------------------------------------------------------------------------ report (stage 16)
    K("report.split", "str", "test", "the pool whose LRs the validation matrix judges", choices=_SPLIT_NAMES),
    K("report.compare", "list", [], "other runs' output_dir to compare with", items="path"),
    K("report.criteria", "list", _DEFAULT_CRITERIA,
      "validation criteria (Meuwly, Ramos & Haraksim 2017): {characteristic, metric, max or min[, level]}; pass if "
      "value <= max (>= min)",
      check=_criteria_check),
    # ------------------------------------------------------------------------------------ generalisation (15b)
    K("validation.external", "list", [],
      "external data sets the LR system never saw, scored with the saved system (stage 15b): a list of {name, root "
      "(<root>/<real|fake>/frames/<video>/*.png, as stage 01 writes), input (optional: <input>/<real|fake>/ videos "
      "or images that stage 01 crops into root with this run's preprocessing options; also the JPEG quality's "
      "source), person_regex (optional; null -> the UADFV rule), max_frames (optional, seeded)}",
      check=_external_check),
    # ------------------------------------------------------------------------------------ casework (evidence.py)
    K("evidence.output", "path", "${output_dir}/evidence",
      "folder holding the case folders <input name>_<first 12 hex of its SHA-256>/ (--output overrides)"),
    K("evidence.checkpoint", ("path", "null"), None,
      "detector weights; null -> the ones stage 04 used (features.checkpoint)"),
    K("evidence.lr_system", ("path", "null"), None,
      "the saved LR system (slr.system.LRSystem) casework loads; null -> stage 15's system with its validated "
      "degradations when it is current (evaluation.robustness.casework_system_dir), else stage 10's"),
    K("evidence.max_frames", ("int", "null"), None,
      "frames sampled from a questioned video, evenly spaced; null -> stage 01's sampling "
      "(preprocessing.frames_per_video / frame_stride), which the video-level system was validated on", lo=1),
    K("evidence.min_face_fraction", "float", 0.5,
      "faces smaller than this fraction of the largest face of a frame are listed but not assessed (in (0, 1])",
      lo=0, hi=1),
    K("evidence.allow_unvalidated_system", "bool", False,
      "give LRs from an LR system that failed validation or is degenerate (report.criteria, the report's judgement), "
      "with NOT VALIDATED above every LR; false: exit 7, no LR (--allow-unvalidated-system overrides per run)"),
    K("evidence.hypotheses.hp", "str", "the image is real (not manipulated)", "the proposition Hp (numerator)"),
    K("evidence.hypotheses.hd", "str", "the image is a deepfake", "the proposition Hd (denominator)"),
    K("evidence.population", "str",
      "faces of the kind in the calibration data (see the report's conditions)",
      "the relevant population the LR system's calibration data stand for"),
    K("evidence.verbal_scale", "list", _DEFAULT_VERBAL_SCALE,
      "verbal equivalents: [lowest |log10 LR|, words]; {h} = the supported proposition", check=_verbal_scale_check),
    K("evidence.verbal_scale_source", "str", "ENFSI Guideline for Evaluative Reporting in Forensic Science (2015)",
      "where the verbal scale comes from (printed with it)"),
    # ------------------------------------------------------------------------------------ dataset
    K("dataset.name", ("str", "null"), "UADFV", "dataset name written into the split file"),
    K("dataset.root", "path", "data/UADFV", "DeepfakeBench layout: <root>/<real|fake>/frames/<video_id>/<idx>.png"),
    # ------------------------------------------------------------------------------------ preprocessing (01)
    K("preprocessing.input", "path", "data/UADFV_videos", "stage 01 input: <input>/<real|fake>/ videos or frame images"),
    K("preprocessing.output", "path", "${dataset.root}", "stage 01 output dataset root (DeepfakeBench layout)"),
    K("preprocessing.frames_per_video", "int", 32, "frames per video, evenly spaced (the paper: 32)", lo=1),
    K("preprocessing.frame_stride", ("int", "null"), None, "every k-th frame instead (overrides frames_per_video)",
      lo=1),
    K("preprocessing.detector", "str", "hog", "face detector: hog (dlib, the paper's) | cnn (dlib MMOD)",
      choices=("hog", "cnn")),
    K("preprocessing.detector_path", ("path", "null"), None, "cnn only: local mmod .dat; null -> face_recognition_models"),
    K("preprocessing.upsample", "int", 1, "detector upsampling of the full-resolution pass", lo=0, hi=4),
    K("preprocessing.detect_max_width", ("int", "null"), 640,
      "detect on a copy at most this wide first; null = always full resolution", lo=32),
    K("preprocessing.multiple_faces", "str", "largest", "largest (crop the largest face) | skip",
      choices=("largest", "skip")),
    K("preprocessing.size", "int", 256, "crop side, px", lo=16),
    K("preprocessing.margin", "float", 1.3, "margin factor around the ArcFace template", lo=1),
    K("preprocessing.align_points", "list", [37, 44, 30, 49, 55], "0-based 68-point indices of the 5-point alignment",
      items="int", length=(5,), lo=0, hi=80),
    K("preprocessing.workers", "int", 1, "worker processes (each loads the models once)", lo=1),
    K("preprocessing.landmarks.model_path", ("path", "null"), None,
      "81-point dlib predictor (.dat); null -> the 68-point model"),
    # ------------------------------------------------------------------------------------ split (02)
    K("split.file", "path", "${stage:02}/split.json", "the split JSON stage 02 writes and later stages read"),
    K("split.unit", "str", "person", "unit of splitting: person | video | frame (frame = the paper's leaky split)",
      choices=("person", "video", "frame")),
    K("split.ratios", "list", [0.45, 0.15, 0.25, 0.15],
      "2 values: calib, test (detector trained elsewhere; with slr.validation crossval every person is validated); "
      "3 values: train, val, test (the paper); 4 values: train, val, calib, test", items="float", length=(2, 3, 4),
      lo=0, hi=1, check=_ratios_check),
    K("split.seed", "int", "${seed}", "shuffle seed; the same seed gives the same file"),
    K("split.person_map", ("path", "null"), None, "CSV video_id,person or JSON {video_id: person}; null -> person_regex"),
    K("split.person_regex", ("str", "null"), None,
      "regex with a (?P<person>...) group; null -> the UADFV rule (NNNN_fake -> NNNN)"),
    # ------------------------------------------------------------------------------------ model (03-04)
    K("model.name", "str", "srm", "detector: a name of the registry training/detectors/__init__.py (README, "
      "Detectors; the registry checks it)"),
    K("model.pretrained_path", ("path", "null"), None, "local weight file; null -> random init with a warning"),
    K("model.input_size", "int", 256, "square input side, px (the crops are 256)", lo=16),
    K("model.base", "str", UNSET, "sbi_fed only: the image detector trained the SBI way"),
    K("model.fed_dim", "int", UNSET, "sbi_fed only: embedding size of training.fed.embedder (dlib 128, arcface 512)",
      lo=1),
    K("model.variant", "str", UNSET, "efficientnet(_lstm) only: b0..b7"),
    K("model.depth", "int", UNSET, "resnet only: 18 | 34 | 50", choices=(18, 34, 50)),
    K("model.dropout", ("float", "null"), UNSET, "dropout before the head (detector's own default if unset)", lo=0, hi=1),
    K("model.key_map", ("map", "null"), None, "a PyTorch checkpoint of another layout (e.g. DeepfakeBench): "
      "{their key prefix: our prefix, or null to drop}; null = our own key names"),
    K("model.provenance.source", ("str", "null"), None, "external/published weights: where they come from (URL, paper)"),
    K("model.provenance.licence", ("str", "null"), None, "external/published weights: their licence"),
    K("model.provenance.notice", ("path", "null"), None, "external/published weights: the NOTICE file kept with them"),
    K("model.provenance.training_data", ("str", "null"), None,
      "external/published weights: their training data, as their authors state it"),
    K("model.margin", "float", UNSET, "srm only: additive angular margin of the head", lo=0),
    K("model.scale", "float", UNSET, "srm only: logit scale of the head", lo=0),
    K("model.window.length", "int", 5, "video detectors: N consecutive sampled frames per window", lo=1),
    K("model.window.stride", ("int", "null"), None, "video detectors: window start every k frames (null = length)", lo=1),
    K("model.window.lstm_layers", "int", 1, "video detectors: LSTM layers, zero initial state", choices=(1, 2)),
    K("model.window.hidden", "int", 256, "video detectors: LSTM units = the window feature size", lo=1),
    K("model.lib.model", "str", "resnet34", "LIB block backbone: resnet34 | efficientnet_b0..b4 | mobilenet_v3_small | "
      "small_cnn"),
    K("model.lib.num_LIBs", "int", 4, "LIB: Local Information Blocks", lo=1),
    K("model.lib.lil_loss", "bool", True, "LIB: Local Information Loss"),
    K("model.lib.gil_loss", "bool", True, "LIB: Global Information Loss"),
    K("model.lib.mi_calculator", "str", "kl", "LIB: kl | wasserstein (Sinkhorn)", choices=("kl", "wasserstein")),
    K("model.lib.balance_loss_method", "str", "auto", "LIB: auto (learnable weights) | hyper (fixed scales)",
      choices=("auto", "hyper")),
    K("model.lib.scales", "list", [1.0, 2.0, 10.0], "LIB hyper: weights of CE, GIL, LIL", items="float", length=(3,),
      lo=0),
    K("model.lib.temperature", "float", 1.5, "LIB: softmax temperature", lo=0),
    K("model.lib.mixup", "bool", True, "LIB: mixup"),
    K("model.lib.alpha", "float", 0.5, "LIB: mixup Beta(alpha, alpha)", lo=0),
    K("model.lib.backbone_weights", ("path", "null"), None, "LIB: local backbone file loaded into every block"),
    K("model.lib.bottleneck", "list", [1000, 500], "LIB: fusion widths; the last is the dumped feature", items="int",
      lo=1),
    K("model.lib.dropout", "float", 0.5, "LIB: dropout", lo=0, hi=1),
    K("model.lib.seed", "int", "${seed}", "LIB: seed of the mixup draws"),
    K("model.ssaaformer.patch_size", "int", 16, "SSAAFormer: token grid = input_size / patch_size", lo=1),
    K("model.ssaaformer.embed_dim", "int", 384, "SSAAFormer: token width", lo=1),
    K("model.ssaaformer.depth", "int", 12, "SSAAFormer: transformer blocks", lo=1),
    K("model.ssaaformer.num_heads", "int", 6, "SSAAFormer: attention heads", lo=1),
    K("model.ssaaformer.mlp_ratio", "float", 4.0, "SSAAFormer: MLP width / embed_dim", lo=0),
    K("model.ssaaformer.symmetric_blocks", "int", 4, "SSAAFormer: first blocks with mirror-blended local attention",
      lo=0),
    K("model.ssaaformer.local_window", ("int", "null"), 7, "SSAAFormer: tokens per side of a local window (null = global)",
      lo=1),
    K("model.ssaaformer.stem", "str", "conv", "SSAAFormer: conv (3x3 stride-2 stem) | linear (ViT patchify)",
      choices=("conv", "linear")),
    K("model.ssaaformer.dropout", "float", 0.0, "SSAAFormer: dropout", lo=0, hi=1),
    K("model.ssaaformer.fidelity_weight", "float", 1.0, "SSAAFormer: weight of the fidelity head's MSE", lo=0),
    # ------------------------------------------------------------------------------------ training (03)
    K("training.mode", "str", "train", "stage 03: train (SGD on train, best epoch on val) | external (the "
      "pretrained detector as it is, no training) | probe (frozen pretrained backbone, logistic head fitted on "
      "train + val persons)", choices=("train", "external", "probe")),
    K("training.probe.C_grid", "list", [1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0], "probe: inverse L2 strengths tried "
      "(scikit-learn LogisticRegression C, standardised features)", items="float", lo=0),
    K("training.probe.folds", "int", 5, "probe: person-grouped CV folds choosing C (by log loss)", lo=2),
    K("training.probe.frames_per_video", ("int", "null"), None, "probe: frames per video of train + val (null = all)",
      lo=1),
    K("training.probe.max_iter", "int", 5000, "probe: LogisticRegression iterations (lbfgs)", lo=1),
    K("training.epochs", "int", 20, "training epochs", lo=1),
    K("training.batch_size", "int", 32, "global batch size (divided among torchrun processes)", lo=1),
    K("training.num_workers", "int", 2, "DataLoader worker processes (0 = main process)", lo=0),
    K("training.optimizer.name", "str", "adam", "adam | adamw | sgd", choices=("adam", "adamw", "sgd")),
    K("training.optimizer.lr", "float", 2.0e-4, "learning rate", lo=0),
    K("training.optimizer.weight_decay", "float", 0.0, "weight decay", lo=0),
    K("training.optimizer.momentum", "float", 0.9, "sgd: momentum", lo=0, hi=1),
    K("training.optimizer.nesterov", "bool", False, "sgd: Nesterov momentum"),
    K("training.optimizer.betas", "list", [0.9, 0.999], "adam/adamw: betas", items="float", length=(2,), lo=0, hi=1),
    K("training.scheduler.name", "str", "none", "per-epoch schedule: none | cosine | step | plateau",
      choices=("none", "cosine", "step", "plateau")),
    K("training.scheduler.min_lr", "float", 0.0, "cosine: final learning rate", lo=0),
    K("training.scheduler.t_max", ("int", "null"), None, "cosine: period in epochs (null = training.epochs)", lo=1),
    K("training.scheduler.step_size", "int", 10, "step: epochs per decay", lo=1),
    K("training.scheduler.gamma", "float", 0.1, "step: decay factor", lo=0),
    K("training.scheduler.factor", "float", 0.1, "plateau: decay factor", lo=0),
    K("training.scheduler.patience", "int", 2, "plateau: epochs without improvement", lo=0),
    K("training.select_metric", "str", "val_auc", "best.pt chosen on val by this metric (never test)",
      choices=("val_auc", "val_video_auc", "val_ap", "val_acc", "val_eer", "val_loss")),
    K("training.frames_per_video", ("int", "null"), None, "train frames per video, evenly spaced (null = all)", lo=1),
    K("training.val_frames_per_video", ("int", "null"), None, "validation frames per video (null = all)", lo=1),
    K("training.balanced", "bool", False, "draw real and fake 1:1 each epoch"),
    K("training.augment", ("bool", "map"), False,
      "false (the paper) | true | {hflip, crop_scale, brightness, contrast, jpeg}",
      keys=("hflip", "crop_scale", "brightness", "contrast", "jpeg")),
    K("training.normalization", "str", "detector", "detector (its own mean/std) | imagenet",
      choices=("detector", "imagenet")),
    K("training.data_mode", "str", "frames", "training dataset (training/data.py registry): frames | sbi | windows | "
      "fidelity (the registry checks it)"),
    K("training.eval_mode", ("str", "null"), None, "validation / stage 04 dataset; null -> the data mode's own"),
    K("training.amp", "str", "auto", "auto (bf16 on CUDA) | bf16 | off", choices=("auto", "bf16", "off")),
    K("training.channels_last", ("str", "bool"), "auto", "auto (on CUDA) | true | false", choices=("auto", True, False)),
    K("training.cudnn_benchmark", "bool", True, "cudnn autotuner"),
    K("training.grad_clip", ("float", "null"), None, "max global gradient L2 norm (null = off)", lo=0),
    K("training.max_steps_per_epoch", ("int", "null"), None, "cap batches per epoch (quick runs)", lo=1),
    K("training.resume", "bool", True, "continue from last.pt when it exists and matches"),
    K("training.learned.margin", "float", 0.0,
      "'detector did not learn' when the 95 % person-cluster interval's lower end of the raw detector AUC on val "
      "or calib is <= 0.5 + margin (0: the interval does not exclude chance; training/learned.py)", lo=0.0, hi=0.5),
    K("training.learned.bootstrap_n", "int", 1000, "person-cluster resamples of the raw detector AUC (0 = no "
      "interval: the AUC itself is judged)", lo=0),
    K("training.learned.seed", "int", "${seed}", "seed of the raw detector AUC bootstrap"),
    K("training.skip_missing", "bool", False, "a missing image in the split: false = error naming it, true = skip"),
    K("training.cache_images", "bool", False, "keep decoded frames in RAM (small datasets)"),
    K("training.tensorboard", "bool", True, "events in stage 03's tensorboard/ folder when tensorboard is installed"),
    K("training.find_unused_parameters", "bool", False, "DistributedDataParallel find_unused_parameters"),
    K("training.sbi.rgb_shift", "float", 20, "SBI source colour: per-channel shift, +- pixel levels", lo=0),
    K("training.sbi.hue_shift_deg", "float", 10, "SBI: hue rotation, +- degrees", lo=0),
    K("training.sbi.sat_scale", "float", 0.3, "SBI: saturation x (1 +- this)", lo=0),
    K("training.sbi.brightness", "float", 0.1, "SBI: +- fraction of 255", lo=0),
    K("training.sbi.contrast", "float", 0.1, "SBI: +- fraction", lo=0),
    K("training.sbi.downscale_factors", "list", UNSET, "SBI: frequency change, down by one of these and back up",
      items="int", lo=1),
    K("training.sbi.sharpen_alpha", "list", UNSET, "SBI: unsharp-mask strength range", items="float", length=(2,)),
    K("training.sbi.sharpen_prob", "float", 0.5, "SBI: probability of sharpening instead of downscaling", lo=0, hi=1),
    K("training.sbi.translate", "list", [0.03, 0.015], "SBI: affine shift, +- fraction of the face side (x, y)",
      items="float", length=(2,)),
    K("training.sbi.scale", "list", [0.95, 1.05], "SBI: affine scale range", items="float", length=(2,), lo=0),
    K("training.sbi.elastic_alpha", "float", 50, "SBI: elastic warp strength (px at 256 px)", lo=0),
    K("training.sbi.elastic_sigma", "float", 7, "SBI: elastic warp smoothness (px at 256 px)", lo=0),
    K("training.sbi.hull_variants", "list", ["face", "jaw_brows", "inner", "components"], "SBI: hull shapes drawn",
      items="str"),
    K("training.sbi.hull_deform", "list", UNSET, "SBI: anisotropic hull scale range", items="float", length=(2,)),
    K("training.sbi.blur_kernels", "list", [5, 25], "SBI: mask blur kernel sides (odd, px at 256 px)", items="int",
      lo=1),
    K("training.sbi.blend_ratios", "list", [0.25, 0.5, 0.75, 1, 1, 1], "SBI: blend ratios drawn", items="float",
      lo=0, hi=1),
    K("training.fed.enabled", "bool", False, "facial-embedding discrepancy guidance (needs model.name: sbi_fed)"),
    K("training.fed.weight", "float", 0.4, "FED distillation weight", lo=0),
    K("training.fed.embedder", "str", "dlib", "dlib (128-d) | arcface (local file, 512-d)", choices=("dlib", "arcface")),
    K("training.fed.model_path", ("path", "null"), None, "null -> dlib's model from face_recognition_models"),
    K("training.fed.shape_predictor_path", ("path", "null"), None, "dlib: local shape predictor (null = the packaged one)"),
    K("training.fed.arcface_arch", "str", "r18", "arcface: backbone of the local file"),
    # ------------------------------------------------------------------------------------ fidelity (03a, 04b)
    K("fidelity.quality_method", "str", "embedding_stability", "face quality: embedding_stability | sharpness",
      choices=("embedding_stability", "sharpness")),
    K("fidelity.perturbations", "int", 4, "perturbed copies per face (embedding_stability)", lo=1),
    K("fidelity.face_model_path", ("path", "null"), None, "null -> dlib's face recognition model"),
    K("fidelity.splits", "list", ["train", "val"], "frames that get a fidelity target (train is required)",
      items="str", check=lambda v: None if "train" in v and set(v) <= set(_SPLIT_NAMES)
      else f"must include 'train' and name pools of {list(_SPLIT_NAMES)}, got {v}"),
    K("fidelity.cache_file", "path", "${stage:03a}/fidelity_targets.csv",
      "fidelity targets cache (+ .json sidecar), written by stage 03a"),
    K("fidelity.recompute", "bool", False, "ignore an up-to-date cache"),
    K("fidelity.features_dir", ("path", "null"), "${stage:04}", "the stage-04 dumps the SVR reads"),
    K("fidelity.svr.C", "float", 1.0, "SVR C", lo=0),
    K("fidelity.svr.epsilon", "float", 0.05, "SVR epsilon", lo=0),
    K("fidelity.svr.gamma", ("str", "float"), "scale", "SVR gamma: scale | auto | a number"),
    K("fidelity.svr.max_train", "int", 5000, "at most this many train frames (seeded subset)", lo=1),
    K("fidelity.svr.train_scores", "str", "cross_fit", "train-pool scores: cross_fit | in_sample",
      choices=("cross_fit", "in_sample")),
    K("fidelity.svr.folds", "int", 5, "cross-fit folds (grouped by person)", lo=2),
    # ------------------------------------------------------------------------------------ features (04)
    K("features.checkpoint", ("path", "null"), "${stage:03}/best.pt", "trained weights (chosen on val by stage 03)"),
    K("features.splits", ("list", "null"), None, "pools to dump; null = every pool of the split file", items="str",
      check=lambda v: None if v is None or set(v) <= set(_SPLIT_NAMES) else f"pools must be of {list(_SPLIT_NAMES)}"),
    K("features.dtype", "str", "float32", "float32 | float16", choices=("float32", "float16")),
    K("features.full_map", "bool", False, "false: pooled feature; true: flattened feature map"),
    K("features.frames_per_video", ("int", "null"), None, "null = every frame of the split", lo=1),
    K("features.batch_size", "int", 32, "batch size of every detector pass feeding the LR system (stage 04, casework, stage 15; fixed, the last batch padded)", lo=1),
    K("features.num_workers", "int", 2, "stage 04 DataLoader workers", lo=0),
    K("features.skip_missing", ("bool", "null"), None, "null -> training.skip_missing"),
    # ------------------------------------------------------------------------------------ evaluation (05-07)
    K("evaluation.features_dir", ("path", "null"), "${stage:04}", "dumps <features_dir>/<split>/"),
    K("evaluation.splits", ("list", "null"), None, "pools stages 05-07 read; null = every pool of split.file that "
      "stage 04 dumped (calib included)", items="str"),
    K("evaluation.inputs", ("map", "null"), None, "or {name: path} of dumps / paper .npz, replacing the two keys above"),
    K("evaluation.fail_on_nonfinite", "bool", True, "stage 05 fails when a dump holds NaN/inf"),
    K("evaluation.tsne.max_points", "int", 2000, "stratified seeded subset above this many frames per split", lo=10),
    K("evaluation.tsne.perplexity", "float", 30, "t-SNE perplexity", lo=1),
    K("evaluation.tsne.pca_dims", ("int", "null"), 50, "PCA before t-SNE (null = off)", lo=2),
    K("evaluation.tsne.threads", ("int", "null"), None, "CPU threads for t-SNE (null = all cores)", lo=1),
    # ------------------------------------------------------------------------------------ slr (08-14)
    K("slr.protocol", "str", "sound", "sound | paper (the paper's own choices, to reproduce its numbers)",
      choices=("sound", "paper")),
    K("slr.model", "str", "kde", "LR model fitted on calib: kde | logistic | isotonic | auto (the lowest "
      "person-grouped cross-validated Cllr on calib)", choices=("kde", "logistic", "isotonic", "auto")),
    K("slr.bounds", "str", "elub", "bounds fitted on the cross-fitted calib LLRs: elub | iv (Invariance Verification)",
      choices=("elub", "iv")),
    K("slr.case_interval.n", "int", 200, "person-cluster refits of the whole system for each case LLR's 95 % "
      "interval (0 = off)", lo=0),
    K("slr.case_interval.seed", "int", "${seed}", "seed of the case-interval refits"),
    K("slr.casework_system", "str", "calib", "the system casework uses: calib (the validated one) | calib+test "
      "(refitted on both after validation; its validation figures are the calib-only system's)",
      choices=("calib", "calib+test")),
    K("slr.score", "str", "cosine_centroid", "score of stage 08: cosine_centroid | logit | fake_probability | "
      "fusion (logistic fusion of the slr.fusion.members runs' scores)",
      choices=("cosine_centroid", "logit", "fake_probability", "fusion")),
    K("slr.fusion.members", "list", [], "slr.score: fusion: the member run folders (finished runs with stages "
      "02-04, one split; relative: to the repository root)", items="path"),
    K("slr.fusion.names", ("list", "null"), None, "the members' names (null = each member's model.name)", items="str"),
    K("slr.fusion.score", "str", "logit", "each member's score that is fused: logit | fake_probability",
      choices=("logit", "fake_probability")),
    K("slr.fusion.source_map", ("path", "null"), None, "slr.score fusion: JSON {video_id: source} (the generator of "
      "each fake, the dataset or camera of each real): the fusion's penalty and members are chosen by cross-validation "
      "over whole sources of calib (2-10 sources: leave one out); null -> folds of whole persons"),
    K("slr.crossfit_folds", "int", 5, "cross-fit folds on calib (grouped by person)", lo=2),
    K("slr.bootstrap.n", "int", 1000, "person-cluster bootstrap replicates for intervals (0 = off; at most 20000: "
      "beyond that the 95 % ends no longer move, only the time grows)", lo=0, hi=20000),
    K("slr.bootstrap.seed", "int", "${seed}", "bootstrap seed"),
    K("slr.features_dir", ("path", "null"), "${stage:04}", "stage 08 input: stage 04's dumps <features_dir>/<split>/"),
    K("slr.features_file", ("path", "null"), None, "instead: one paper-style .npz, divided by slr.split_file"),
    K("slr.split_file", ("path", "null"), "${split.file}", "the split JSON that divides slr.features_file"),
    K("slr.batch_size", "int", 64, "stage 08 feature rows per batch", lo=1),
    K("slr.scores_dir", ("path", "null"), "${stage:08}", "stages 09-14 input: <scores_dir>/<pool>.csv"),
    K("slr.bandwidth.scale", "str", "std", "bandwidth grid in multiples of the train scores' std | absolute",
      choices=("std", "absolute")),
    K("slr.bandwidth.grid_min", "float", 0.01, "smallest grid bandwidth", lo=0),
    K("slr.bandwidth.grid_max", "float", 3.0, "largest grid bandwidth", lo=0),
    K("slr.bandwidth.grid_n", "int", 40, "log-spaced grid points", lo=2),
    K("slr.bandwidth.n_folds", "int", 10, "CV folds of the bandwidth choice", lo=2),
    K("slr.bandwidth.seed", "int", "${seed}", "CV fold seed"),
    K("slr.paper_seed", "int", 42, "paper protocol: the paper's KFold random_state"),
    K("slr.calibration", "str", "none", "sound: none | pav | logistic, fitted on val/calib",
      choices=("none", "pav", "logistic")),
    K("slr.video_level", "bool", True, "also video-level results (video score = mean frame score)"),
    K("slr.validation", "str", "four_pools",
      "sound: four_pools (LR system fitted on calib, validated on test) | crossval (every person of calib and test "
      "validated: person-grouped folds, each fold's LLRs from a system fitted on the other folds; the saved system "
      "is fitted on all of them; for a detector that never saw these persons; slr/crossval.py)",
      choices=("four_pools", "crossval")),
    K("slr.crossval.folds", "int", 5, "crossval: person-grouped folds of the cross-validation", lo=2),
    K("slr.crossval.seed", "int", "${seed}", "crossval: seed of the fold assignment"),
    # ------------------------------------------------------------------------------------ robustness (15)
    K("robustness.enabled", "bool", True, "stage 15: LRs of degraded test faces"),
    K("robustness.degradations", "map",
      {"jpeg": [90, 70, 50, 30], "downscale": [0.75, 0.5, 0.35], "blur": [0.5, 1, 2], "noise": [2, 5, 10]},
      "family -> strengths: jpeg (quality), downscale (factor), blur (sigma px), noise (sigma levels)",
      check=_degradations_check),
    K("robustness.seed", "int", "${seed}", "seed of the degradations"),
    K("robustness.max_frames", ("int", "null"), None, "test frames degraded (null = all)", lo=1),
    K("robustness.criteria", "list", "${report.criteria}", "criteria the degraded LRs are judged by",
      check=_criteria_check),
    K("robustness.upscale", "str", "linear", "downscale's way back up: linear (INTER_LINEAR) | cubic (INTER_CUBIC)",
      choices=("linear", "cubic")),
    K("robustness.bootstrap_n", ("int", "null"), None,
      "person-cluster resamples per setting and level (null = slr.bootstrap.n; 0 = no intervals)", lo=0, hi=20000),
)

# ------------------------------------------------------------------------------------ results grid
# A results config (run_experiments.py, configs/results_uadfv.yaml) is not a pipeline config: its
# ``experiments`` keys are declared here in a table of their own, which results_grid.config checks
# the same way (an unknown key refused naming the closest declared one, values checked, defaults filled).
_DETECTOR_KEYS = ("config", "set", "features_file", "scores", "control")
_SMOKE_KEYS = ("grid", "grids", "seeds", "scores", "models", "work_dir", "results_dir", "docs", "set", "by_model",
               "by_score", "detector_set", "paper", "person_map", "dataset_root", "fusions")


def _detectors_check(value) -> str | None:
    for name, d in value.items():
        if d is not None and not isinstance(d, dict):
            return f"detector '{name}' must be a mapping of {', '.join(_DETECTOR_KEYS)}, got {d!r}"
        bad = sorted(set(d or {}) - set(_DETECTOR_KEYS))
        if bad:
            return f"detector '{name}' has unknown key(s) {', '.join(bad)} (allowed: {', '.join(_DETECTOR_KEYS)})"
    return None


def _fusions_check(value) -> str | None:
    for name, f in value.items():
        if not isinstance(f, dict) or not isinstance(f.get("members"), list) or len(f["members"]) < 2:
            return f"fusion '{name}' must be a mapping with members: a list of at least 2 detector names, got {f!r}"
        bad = sorted(set(f) - {"members", "models", "score"})
        if bad:
            return f"fusion '{name}' has unknown key(s) {', '.join(bad)} (allowed: members, models, score)"
    return None


RESULTS_KEYS: tuple[K, ...] = (
    K("experiments.name", "str", "uadfv", "the results' name (results.json, the page's title)"),
    K("experiments.dataset_root", "path", "../shared/data/UADFV", "the data set (relative: to the repository root)"),
    K("experiments.dataset_root_env", ("str", "null"), "UADFV_ROOT",
      "environment variable that, when set, names the data set instead of dataset_root (null = none)"),
    K("experiments.person_map", ("path", "null"), None,
      "identity map under the dataset root (split.person_map of every run); null = persons are videos"),
    K("experiments.work_dir", "path", "outputs/results_uadfv", "run folders <work_dir>/<detector>/seed<k>/..."),
    K("experiments.results_dir", "path", "results/uadfv", "results.json, cells/<cell>/test_lr.csv, the figure"),
    K("experiments.docs", "path", "docs/results.md", "the generated page"),
    K("experiments.grid", "str", "cpu", "the grid run when --grid is not given (a name in grids)"),
    K("experiments.grids", "map", UNSET, "grid name -> list of detector names (keys of detectors)"),
    K("experiments.base_config", "path", "configs/uadfv.yaml", "a detector's config when it names none"),
    K("experiments.detectors", "map", UNSET,
      "detector name -> {config, set, features_file, scores, control: a shortcut control, never 'best'}",
      check=_detectors_check),
    K("experiments.seeds", "list", UNSET, "top-level seed of each run (the person split derives from it)", items="int"),
    K("experiments.scores", "list", UNSET, "score functions (slr.scores registry)", items="str"),
    K("experiments.models", "list", UNSET, "LR models (slr.models registry)", items="str"),
    K("experiments.set", "map", {}, "config overrides of every run (upstream and cells)"),
    K("experiments.by_model", "map", {}, "LR model -> config overrides of its cells (stages 08 on)"),
    K("experiments.by_score", "map", {}, "score -> config overrides of its cells (stages 08 on)"),
    K("experiments.paper.enabled", "bool", False, "run the paper's features as a pseudo-detector"),
    K("experiments.paper.detector", "str", "paper_srm", "the pseudo-detector's name in cell names"),
    K("experiments.paper.config", "path", "configs/uadfv.yaml", "its base config"),
    K("experiments.paper.features_file", "path", "paper_srm_features.npz", "the features (.npz) under the dataset root"),
    K("experiments.paper.set", "map", {}, "config overrides of its runs"),
    K("experiments.paper.paper_seeds", "list", [1024], "seeds of the `paper` protocol's runs", items="int"),
    K("experiments.paper.paper_protocol_set", "map", {}, "config overrides of the `paper` protocol's runs"),
    K("experiments.paper.sound_seeds", ("list", "null"), None,
      "seeds of the sound protocol on its features (null = experiments.seeds)", items="int"),
    K("experiments.paper.sound_models", ("list", "null"), None,
      "LR models of the sound protocol on its features (null = experiments.models)", items="str"),
    K("experiments.paper.sound_score", "str", "cosine_centroid", "score of the sound protocol on its features"),
    K("experiments.published", ("map", "null"), None, "the paper's published figures ({source, figures})"),
    K("experiments.fusions", "map", {}, "fusion name -> {members: [detector names of the grid, sharing one split], "
      "models: [LR models] (default: experiments.models), score: member score (default logit)}: cells "
      "<name>-seed<k>-fusion-<model> (slr.score: fusion over the members' upstream runs)", check=_fusions_check),
    K("experiments.smoke", "map", {}, "--smoke: keys that replace the grid's (set, detector_set, paper merge)",
      keys=_SMOKE_KEYS),
)
RESULTS_BY_NAME: dict[str, K] = {k.name: k for k in RESULTS_KEYS}
RESULTS_SECTIONS: frozenset = frozenset(".".join(k.name.split(".")[:i]) for k in RESULTS_KEYS
                                        for i in range(1, k.name.count(".") + 1))

BY_NAME: dict[str, K] = {k.name: k for k in KEYS}
assert len(BY_NAME) == len(KEYS), "a key is declared twice"
SECTIONS: frozenset = frozenset(".".join(k.name.split(".")[:i]) for k in KEYS for i in range(1, k.name.count(".") + 1))


def names() -> list[str]:
    return list(BY_NAME)


def suggest(name: str, results: bool = False) -> str | None:
    """The closest declared key (or section) to ``name``, for "did you mean ...?" (``results``: among
    the results config's keys)."""
    pool = list(RESULTS_BY_NAME) + sorted(RESULTS_SECTIONS) if results else list(BY_NAME) + sorted(SECTIONS)
    close = difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
    if close:
        return close[0]
    # same last part in another section, or same section with a close last part
    head, _, last = name.rpartition(".")
    same_section = [k for k in pool if k.rpartition(".")[0] == head]
    close = difflib.get_close_matches(last, [k.rpartition(".")[2] for k in same_section], n=1, cutoff=0.5)
    if close:
        return f"{head}.{close[0]}" if head else close[0]
    return None


def did_you_mean(name: str, results: bool = False) -> str:
    s = suggest(name, results)
    return f"; did you mean '{s}'?" if s else ""


def defaults(prefix: str | None = None, resolve: bool = False) -> dict:
    """The defaults of every key under ``prefix`` (all keys when None) as a nested mapping.

    ``resolve=True`` replaces a bare reference to a top-level key (``${seed}``) by that key's default:
    the values a detector built outside a config starts from (``model.lib`` -> LIB's options)."""
    out: dict = {}
    for k in KEYS:
        if k.default is UNSET or (prefix and not k.name.startswith(prefix + ".")):
            continue
        parts = k.name[len(prefix) + 1:].split(".") if prefix else k.name.split(".")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        value = copy.deepcopy(k.default)
        ref = re.fullmatch(r"\$\{([A-Za-z0-9_]+)\}", value) if resolve and isinstance(value, str) else None
        if ref and ref.group(1) in BY_NAME:
            value = copy.deepcopy(BY_NAME[ref.group(1)].default)
        node[parts[-1]] = value
    return out


# ------------------------------------------------------------------------------------------- checking
_TYPE_WORDS = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false",
               "null": "null", "list": "a list", "map": "a mapping", "path": "a path (string)"}


def _is(value: Any, t: str) -> bool:
    if t == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if t == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if t in ("str", "path"):
        return isinstance(value, str)
    if t == "bool":
        return isinstance(value, bool)
    if t == "null":
        return value is None
    if t == "list":
        return isinstance(value, list)
    if t == "map":
        return isinstance(value, dict)
    raise AssertionError(f"unknown schema type {t}")


def describe(k: K) -> str:
    """What a key accepts, in words (used in error messages and --print-config)."""
    words = " or ".join(_TYPE_WORDS[t] for t in k.types)
    if k.items:
        items = k.items if isinstance(k.items, tuple) else (k.items,)
        words += f" of {' or '.join(_TYPE_WORDS[t] for t in items)}"
    if k.length:
        words += f" with {' or '.join(map(str, k.length))} items"
    if k.choices:
        words += f", one of {', '.join('null' if c is None else str(c).lower() if isinstance(c, bool) else str(c) for c in k.choices)}"
    if k.lo is not None and k.hi is not None:
        words += f", in [{k.lo:g}, {k.hi:g}]"
    elif k.lo is not None:
        words += f", >= {k.lo:g}"
    elif k.hi is not None:
        words += f", <= {k.hi:g}"
    return words


def _range_error(k: K, v: Any) -> bool:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    return (k.lo is not None and v < k.lo) or (k.hi is not None and v > k.hi)


def check_value(k: K, value: Any) -> str | None:
    """None when ``value`` is valid for ``k``; else the reason (the caller names key and file)."""
    if not any(_is(value, t) for t in k.types):
        return f"must be {describe(k)}, got {value!r}"
    if value is None:
        return None
    if k.choices is not None and not isinstance(value, (list, dict)) and value not in k.choices:
        close = difflib.get_close_matches(str(value), [str(c) for c in k.choices], n=1)
        return (f"must be one of {', '.join(map(str, k.choices))}, got {value!r}"
                + (f"; did you mean '{close[0]}'?" if close else ""))
    if isinstance(value, list):
        if k.length and len(value) not in k.length:
            return f"must be {describe(k)}, got {len(value)} items: {value!r}"
        if k.items:
            items = k.items if isinstance(k.items, tuple) else (k.items,)
            for i, v in enumerate(value):
                if not any(_is(v, t) for t in items):
                    return f"must be {describe(k)}; item {i} is {v!r}"
                if _range_error(k, v):
                    return f"must be {describe(k)}; item {i} is {v!r}"
    elif _range_error(k, value):
        return f"must be {describe(k)}, got {value!r}"
    if isinstance(value, dict) and k.keys is not None:
        bad = sorted(set(value) - set(k.keys))
        if bad:
            close = difflib.get_close_matches(bad[0], k.keys, n=1)
            return (f"has unknown key(s) {', '.join(bad)}" + (f"; did you mean '{k.name}.{close[0]}'?" if close else "")
                    + f" (allowed: {', '.join(k.keys)})")
    if k.pattern and isinstance(value, str) and not re.fullmatch(k.pattern, value):
        return f"must be {k.help}, got {value!r}"
    if k.check is not None:
        return k.check(value)
    return None
