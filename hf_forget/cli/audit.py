"""`hf-forget audit`: does this CLIP know these people? (the Identity Inference Attack on one checkpoint, and with
``--attacks`` the stronger attacks of :mod:`hf_forget.evaluation.attacks` on the same embeddings)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Collection

from ._parsing import CommandParser, non_negative_int, positive_int

HELP = "Run the Identity Inference Attack: does a CLIP link these people's names to their faces?"


def make_parser(prog: str = "hf-forget audit") -> CommandParser:
    parser = CommandParser(
        prog=prog,
        description=HELP
        + " Faces come as one subfolder per person, named after the person. Each person's faces are scored against "
        "the candidate names in 21 prompt templates; a person is recognised when, for at least --tau templates, most "
        "images pick their name. The table lists names (it is the person's or the auditor's own audit); --redact "
        "shows indices only. With --attacks, stronger attacks run on the same embeddings and report per group "
        "(forgotten / retained / unseen): say who was forgotten with --forgotten.",
    )
    parser.add_argument("--model_name_or_path", required=True, help="A CLIPModel checkpoint directory (with tokenizer and image processor).")
    parser.add_argument("--faces", required=True, help="Folder with one subfolder of face images per person the model should know.")
    parser.add_argument("--unseen_faces", help="Folder of persons the model never saw (their recognition rate is the FPR).")
    parser.add_argument("--candidates", type=positive_int, default=1000, help="Candidate names in total: real ones plus seeded fillers (default 1000).")
    parser.add_argument("--images_per_person", type=positive_int, default=20, help="Images used a person; persons with fewer are skipped (default 20).")
    parser.add_argument("--tau", type=positive_int, default=1, help="Right templates needed to count as recognised (default 1).")
    parser.add_argument("--seed", type=non_negative_int, default=42, help="Seed of the filler-name generator (default 42).")
    parser.add_argument("--batch_size", type=positive_int, default=1024, help="Prompts embedded at once (default 1024).")
    parser.add_argument(
        "--attacks",
        help="Also run the attack suite: 'all' or a comma list of idia, idia_top5, rank_at_10, membership_auc, "
        "forget_set_auc_text, forget_set_auc_vision (the paper's IDIA always runs).",
    )
    parser.add_argument(
        "--forgotten",
        action="append",
        help="Persons the model was made to forget: comma-separated --faces folder names, or @FILE (one a line). "
        "Names without a face folder count for the text forget-set detection only.",
    )
    parser.add_argument("--neutral_term", default="a person", help="Neutral term of the forget-set detection (default 'a person').")
    parser.add_argument("--output", help="Write the results as JSON to this file (never inside an input).")
    parser.add_argument("--redact", action="store_true", help="Print and write person indices (sorted folder order), never names.")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu).")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run(make_parser().parse_args_and_config(argv))


def load_clip(path: str, device: str | None = None):
    """``(CLIPModel, tokenizer, image processor)`` from a checkpoint directory; user errors as ForgetInputError."""
    import torch
    from transformers import CLIPImageProcessorPil, CLIPModel

    from ..errors import ForgetInputError
    from ..validation import check_device, load_pretrained, load_tokenizer, read_model_type, validate_model_path

    check_device(device)
    validate_model_path(path)
    if os.path.isdir(path):
        model_type, _ = read_model_type(path)
        if model_type != "clip":
            raise ForgetInputError(
                f"{path!r} holds a {model_type or 'unknown'} model, not a CLIP (CLIPModel) checkpoint: the audit needs "
                "both the text and the vision tower."
            )
    hint = "pass a CLIPModel directory holding its weights, tokenizer and preprocessor_config.json."
    model = load_pretrained(CLIPModel, path, hint)
    tokenizer = load_tokenizer(path, hint)
    processor = load_pretrained(CLIPImageProcessorPil, path, hint)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    return model.to(device).eval(), tokenizer, processor


def load_faces(folder: str) -> dict:
    """Person name (subfolder name) -> images."""
    from ..data.images import load_face_folders

    loaded = load_face_folders(folder, min_images_per_person=1)
    return dict(zip(loaded.folder_names, loaded.persons))


def format_table(result, redact: bool = False, forgotten: Collection[str] = ()) -> str:
    """The per-person table and the rates, as printed by the command."""
    label = (lambda p: f"#{p.index}") if redact else (lambda p: p.name)
    group = lambda p: "forgotten" if p.name in forgotten else "known" if p.expected_known else "unseen"  # noqa: E731
    rows = [(label(p), group(p), f"{p.correct_templates}/{result.num_templates}",
             "YES" if p.recognised else "no") for p in result.persons]
    header = ("person", "expected", "templates right", "recognised")
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    out = [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]
    if result.skipped:
        skipped = [f"#{i}" for i in result.skipped] if redact else result.skipped_names
        out.append(f"skipped (fewer than {result.images_per_person} images): {', '.join(skipped)}")
    rate = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    known = sum(p.expected_known for p in result.persons)
    out.append(
        f"TPR {rate(result.tpr)} (FNR {rate(result.fnr)}) over {known} known persons; "
        f"FPR {rate(result.fpr)} over {len(result.persons) - known} unseen persons; "
        f"{result.num_candidates} candidates, {result.num_templates} templates, tau = {result.tau}"
    )
    return "\n".join(out)


def format_attacks(suite) -> str:
    """The attack suite's per-group rates and AUCs, as printed by the command (no names)."""
    from ..evaluation.attacks import ATTACKS, GROUPS, PER_GROUP_ATTACKS

    value = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    counts = suite.details["num_persons"]
    header = ["attack", *(f"{g} (n={counts[g]})" for g in GROUPS)]
    rows = [[a, *(value(suite.summary[a][g]) for g in GROUPS)] for a in PER_GROUP_ATTACKS if a in suite.details["attacks"]]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    out = ["", "attack suite: share of each group found (forgotten / retained / never seen)"]
    out += [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)] if rows else []
    aucs = [a for a in ATTACKS[len(PER_GROUP_ATTACKS):] if a in suite.details["attacks"]]
    if aucs:
        out.append("detection AUC (0.5: no signal; far from 0.5 either way: a leak)")
        out += [f"{a.ljust(max(map(len, aucs)))}  {value(suite.summary[a])}" for a in aucs]
    return "\n".join(out)


def read_forgotten(values: list[str] | None) -> list[str]:
    """``--forgotten`` values (comma lists, ``@FILE``) -> names; user errors as ForgetInputError."""
    from ..config import parse_names
    from ..errors import ForgetInputError

    if not values:
        return []
    try:
        names = [name for name in parse_names(values) if name]
    except UnicodeDecodeError:
        raise ForgetInputError("the --forgotten file is not UTF-8 text: save it as UTF-8, one name a line.") from None
    if not names:
        raise ForgetInputError("--forgotten names no one: pass folder names of --faces, or @FILE with one name a line.")
    return list(dict.fromkeys(names))


def check_output(output: str | None, inputs: list[str | None]) -> None:
    """``--output`` must be a file path outside every input (the model directory, face folders, names files)."""
    from ..errors import ForgetInputError

    if not output:
        return
    if os.path.isdir(output):
        raise ForgetInputError(f"--output {output!r} is a directory: pass a file path such as audit.json.")
    target = os.path.realpath(output)
    for path in inputs:
        if path and os.path.exists(path):
            source = os.path.realpath(path)
            if target == source or target.startswith(source.rstrip(os.sep) + os.sep):
                raise ForgetInputError(
                    f"--output {output!r} lies inside the input {path!r}: the audit never writes into its inputs; "
                    "pass a path outside them."
                )


def write_json(path: str, data: dict) -> None:
    """Write ``data`` to ``path`` atomically, as strict JSON (see :func:`hf_forget.outputs.write_json`)."""
    from ..outputs import write_json as write_atomically  # noqa: PLC0415 - keep `hf-forget audit --help` light

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_atomically(path, data)


def run(args: argparse.Namespace) -> int:
    from ..errors import ForgetInputError
    from ..evaluation.attacks import embed_for_attacks, parse_attacks, run_attacks
    from ..evaluation.idia import IDIA_TEMPLATES, identity_inference_attack

    if args.tau > len(IDIA_TEMPLATES):
        raise ForgetInputError(
            f"--tau {args.tau} asks for more right templates than the {len(IDIA_TEMPLATES)} the attack uses: "
            f"pass 1 to {len(IDIA_TEMPLATES)}."
        )
    forgotten = read_forgotten(args.forgotten)
    attacks = parse_attacks(args.attacks) if args.attacks else None
    name_files = [value[1:] for value in args.forgotten or () if value.startswith("@")]
    check_output(args.output, [args.model_name_or_path, args.faces, args.unseen_faces, *name_files])
    faces = load_faces(args.faces)
    unseen = load_faces(args.unseen_faces) if args.unseen_faces else {}
    overlap = set(faces) & set(unseen)
    if overlap:
        raise ForgetInputError(
            f"{len(overlap)} person folder name(s) appear in both --faces and --unseen_faces: a person is either known or unseen."
        )
    if set(forgotten) & set(unseen):
        raise ForgetInputError(
            f"{len(set(forgotten) & set(unseen))} --forgotten name(s) are --unseen_faces folders: forgotten persons are "
            "ones the model knew; put their faces under --faces."
        )
    if forgotten and not attacks:
        raise ForgetInputError("--forgotten is used by the attack suite: add --attacks all (or a list of attacks).")
    model, tokenizer, processor = load_clip(args.model_name_or_path, args.device)
    suite = None
    if attacks:
        embeddings = embed_for_attacks(
            model, tokenizer, processor, {**faces, **unseen}, forgotten=forgotten, unseen=list(unseen),
            num_candidates=args.candidates, images_per_person=args.images_per_person, seed=args.seed,
            neutral_term=args.neutral_term, batch_size=args.batch_size,
        )
        suite = run_attacks(embeddings, ["idia", *attacks], tau=args.tau)
        result = suite.idia
    else:
        result = identity_inference_attack(
            model,
            tokenizer,
            processor,
            {**faces, **unseen},
            unseen=list(unseen),
            num_candidates=args.candidates,
            images_per_person=args.images_per_person,
            tau=args.tau,
            seed=args.seed,
            batch_size=args.batch_size,
        )
    print(format_table(result, redact=args.redact, forgotten=set(forgotten)))
    if suite is not None:
        print(format_attacks(suite))
    if args.output:
        data = {
            "model": os.path.basename(os.path.normpath(args.model_name_or_path)),
            "idia": result.to_dict(include_names=not args.redact),
        }
        if suite is not None:
            data["attacks"] = suite.summary
            data["attack_details"] = suite.details
        write_json(args.output, data)
        print(f"results written to {args.output}", file=sys.stderr)
    return 0
