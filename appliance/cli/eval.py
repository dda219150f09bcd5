"""`appliance eval --data DIR [--groups FILE...] [--nasa DIR] [--fusion] [--json] [--out DIR] [--calibrate]`:
measure the pipeline's accuracy (pooled, per group, reference-against-live, multi-look)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from appliance.cli.common import add_config_args, config_from_args
from appliance.errors import ApplianceError
from appliance.evaluation.embed_dataset import embed_dataset
from appliance.evaluation.fusion import evaluate_fusion
from appliance.evaluation.groups import load_group_files
from appliance.evaluation.lfw import load_dataset
from appliance.evaluation.lfw_eval import evaluate, manifest_calibration
from appliance.evaluation.nasa import evaluate_nasa
from appliance.evaluation.report import summary_lines, write_report
from appliance.matching.normalise import normalisation_record, normaliser_for
from appliance.matching.threshold import resolve_threshold
from appliance.runtime.manifest import write_calibration
from appliance.vision.fingerprint import pipeline_fingerprint
from appliance.vision.pipeline import FacePipeline


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="measure verification and open-set accuracy on an LFW-style folder")
    p.add_argument("--data", type=Path, required=True, metavar="DIR", help="Name/Name_0001.jpg folders + pairs.txt")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object (default: summary)")
    p.add_argument("--out", type=Path, metavar="DIR", help="write report.md, plots and failures here")
    p.add_argument("--groups", type=Path, nargs="+", metavar="FILE",
                   help="label files, one per group (image file names, one a line; group = file name): "
                   "per-group and cross-group figures with 95%% identity-bootstrap intervals and differentials")
    p.add_argument("--calibrate", action="store_true",
                   help="write the measured threshold (FPIR <= 1e-3; with --groups, for every group) and floor "
                   "into models/manifest.toml")
    p.add_argument("--nasa", type=Path, metavar="DIR",
                   help="reference photo against live view: enrol each <person>/portrait.jpg among the LFW "
                   "gallery, probe with each <person>/iss_photo_*.jpg")
    p.add_argument("--fusion", action="store_true",
                   help="multi-look fusion: single best look against fused decisions at equal TPIR (slow: "
                   "embeds 5 looks of every open-set probe)")
    p.add_argument("--fusion-looks", type=int, default=5, metavar="N",
                   help="with --fusion: looks per track (default 5; the tracker embeds at most tracker.max_looks)")
    p.add_argument("--fusion-probes", type=int, metavar="N",
                   help="with --fusion: only N mated and N non-mated probes (a quick look, not the figures)")
    p.add_argument("--raw-scores", action="store_true",
                   help="score on the raw cosine even if the manifest normalises this model's scores (for "
                   "comparison: the threshold is then measured on the raw scores, not taken from the manifest)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar even on a terminal")
    add_config_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    pipe = FacePipeline.from_config(config)
    dataset = load_dataset(args.data)
    groups = load_group_files(args.groups) if args.groups else None  # bad input fails before the long part
    if not 1 <= args.fusion_looks <= 20:
        raise ApplianceError(f"--fusion-looks {args.fusion_looks}: between 1 and 20 looks per track")
    if args.nasa and not args.nasa.is_dir():
        raise ApplianceError(f"--nasa: folder {args.nasa} not found")
    if args.raw_scores and args.calibrate:
        raise ApplianceError("--raw-scores with --calibrate: the manifest's threshold is on the normalised scale")
    normaliser = None if args.raw_scores else normaliser_for(pipe.embedder_spec, config.models.dir)
    emb = embed_dataset(pipe, dataset, progress=False if args.no_progress else None)
    if normaliser is not None:
        emb.offsets = normaliser.offsets(emb.embeddings)
    first_calibration = pipe.embedder_spec.calibration is None and args.calibrate
    if (first_calibration or args.raw_scores) and config.matcher.threshold is None:
        # A model's first calibration (a force's own model, just added to the manifest): the calibrated
        # threshold does not depend on the one the figures are reported at, so measure it, then report there.
        result, raw = evaluate(dataset, emb, pipe.model_id, 0.5, groups, normaliser)
        threshold = float(result["calibration"]["threshold"])
    else:
        threshold = resolve_threshold(config.matcher, pipe.embedder_spec)
    result, raw = evaluate(dataset, emb, pipe.model_id, threshold, groups, normaliser)
    result["scores"] = normaliser.describe() if normaliser is not None else "cosine similarity (raw)"
    if args.nasa:
        result["nasa"] = evaluate_nasa(pipe, args.nasa, dataset, emb, threshold, normaliser)
    if args.fusion:
        result["fusion"], raw["fusion"] = evaluate_fusion(pipe, dataset, emb, threshold,
                                                          progress=False if args.no_progress else None,
                                                          max_probes=args.fusion_probes, looks=args.fusion_looks,
                                                          normaliser=normaliser)
    command = "appliance " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if args.out:
        write_report(result, raw, dataset.root, args.out, command)
    if args.calibrate:
        cal = result["calibration"]
        norm = normalisation_record(pipe.embedder_spec, normaliser, config.models.dir)
        path = write_calibration(pipe.model_id, manifest_calibration(result, dataset.root.name, command,
                                                                     pipeline_fingerprint(config, norm)),
                                 config.models.dir, norm)
        print(f"calibrated {pipe.model_id}: threshold {cal['threshold']} floor {cal['floor']} -> {path}",
              file=sys.stderr)
    if args.json:
        print(json.dumps(result))
    else:
        o = result["open_set"]
        print(f"{result['model']}: pairs accuracy {result.get('pairs', {}).get('accuracy', float('nan')):.4f}, "
              f"TAR@FAR1e-4 {result['tar_at_far']['1e-4']:.4f}, threshold {result['threshold']:.4f}: "
              f"TPIR {o['tpir_at_threshold']:.4f} FPIR {o['fpir_at_threshold']:.5f}")
        for line in summary_lines(result):
            print(line)
    return 0
