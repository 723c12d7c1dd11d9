"""many names: forget 1,024 names at once (the 32 seen identities + 992 generated fillers) from the toy-world CLIP.

    OMP_NUM_THREADS=1 python benchmarks/many_names.py                      # 3 seeds in this process (~25 min)
    OMP_NUM_THREADS=1 python benchmarks/many_names.py --seeds 1            # one seed: results/many_names.partial-1.json
    python benchmarks/many_names.py --merge                                # partials -> results/many_names.json
    python benchmarks/many_names.py --merge_tuning                         # partials -> many_names_tuning.json
    OMP_NUM_THREADS=1 python benchmarks/many_names.py --seeds 1 --no-suite # without the attack suite (the IDIA only)

Each run goes through forget_text; afterwards held-out sim_backdoor / sim_clean and the IDIA TPR of the 32
seen identities (target: <= 0.05). The defaults are the best recipe measured (benchmarks/README.md: many
names). Every option also takes its old run.py spelling (--many_lr, --many_seeds, --merge_many_names, ...).

With --suite (the default) the attack suite (hf_forget.evaluation.attacks) also runs on the undefended toy CLIP
and on each run's defended one, as the demo runs it: audit faces seed 700,000 + seed (20 per identity), 1,000
candidates with Faker fillers seed 800,000 + seed. Groups: forgotten = the 32 seen identities (all of them are
forgotten here, so there is no retained group: its rates are null), unseen = the 32 unseen identities; the text
forget-set AUC takes the 32 seen names as the forgotten positives against every other candidate (the 992
forgotten filler names have no faces; the few of them that are also audit fillers are counted, and
forget_set_auc_text_all_forgotten counts them as positives too). Each run stores attacks.before / attacks.after
(the suite's summaries) and attack_details_after; the merged summary their medians. Rates and AUCs only: a
record that holds a name is refused before anything is written.
"""

from __future__ import annotations

import argparse
import copy
import glob
import json
import os
import sys
import tempfile

import harness
from audit import toy_audit
from harness import (
    clock, elapsed, format_rows, median, run_forget_text, section_main, section_parser, seen_names, step_timer,
    text_config, toy_captions, toy_names, toy_text, write,
)

NAME = "many_names"
COST = 5  # rough relative cost: with run.py --jobs, the costliest sections start first
NUM_NAMES = 1024
SUITE_CANDIDATES = 1000  # the demo's audit: 1,000 candidates, 20 pictures a person
SUITE_IMAGES_PER_PERSON = 20
SUITE_GROUPS = ("forgotten: the 32 seen identities (all forgotten: no retained group, its rates are null); "
                "unseen: the 32 unseen identities; forget_set_auc_text: the 32 seen names against every other "
                "candidate (forget_set_auc_text_all_forgotten: also the forgotten fillers among the candidates)")
ACCEPTANCE = "sim_backdoor >= 0.98 and sim_clean >= 0.99 on held-out captions, IDIA TPR <= 0.05 (seen)"


def make_parser():
    parser = section_parser(sys.modules[__name__])

    def option(name: str, **kwargs) -> None:  # --NAME, also spelled --many_NAME (its run.py name); dest many_NAME
        parser.add_argument(f"--{name}", f"--many_{name}", dest=f"many_{name}", **kwargs)

    # Re-tuned for the 6-layer toy CLIP (2026-11-30, many_names_tuning.json); the 3-layer one's recipe was lr 1e-4,
    # residual 2, token lr 1e-2, 20,000 clean captions (many_names_b62dd6e3.json).
    option("lr", type=float, default=5e-5, help="learning rate")
    option("alpha", type=float, default=4.0, help="alpha")
    option("steps", type=int, default=1600, help="steps (LR milestones at 1/2 and 3/4 of them)")
    option("trigger_at_end", action=argparse.BooleanOptionalAction, default=True,
           help="trigger_at_end (names may replace a caption's last word)")
    option("short", type=float, default=0.0, help="short_trigger_fraction")
    option("residual", type=float, default=4.0, help="identity_residual_weight")
    option("token_lr", type=float, default=2.5e-3, help="token_embedding_learning_rate")
    option("captions", choices=["scenes", "demo"], default="demo", help="training captions (see many_names_captions)")
    option("clean_captions", type=int, default=80000,
           help="scene captions in the clean pool (the demo recipe adds half as many cut captions and the person "
                "captions)")
    option("carrier_captions", type=int, default=3000,
           help="the names' own carrier pool, built like the clean pool from this many scene captions (so person "
                "captions weigh more there); 0: the names go into the clean pool")
    option("full_steps", action=argparse.BooleanOptionalAction, default=True,
           help="train all steps instead of stopping once the held-out criterion holds")
    option("trigger_samples", type=int, default=204800, help="poisoned captions in the pool")
    option("seeds", type=int, nargs="+", default=None,
           help="seeds run in this process (default: 0 .. --repeats - 1; split the run over processes, then --merge)")
    option("suite", action=argparse.BooleanOptionalAction, default=True,
           help="run the attack suite before the defense and after each run (hf_forget.evaluation.attacks, "
                "as the demo runs it)")
    option("save_dir", default=None,
           help="save each run's defended CLIPModel under DIR/seed-N (outside the repository)")
    parser.add_argument("--merge", "--merge_many_names", dest="merge", action="store_true",
                        help="merge the partial results of --seeds runs into many_names.json")
    parser.add_argument("--merge_tuning", action="store_true",
                        help="append the partial results to many_names_tuning.json (single-seed tuning runs)")
    return parser


def many_names_captions(kind: str, count: int = 3000) -> list[str]:
    """Training captions: ``scenes`` (toy-world scene captions only) or ``demo`` (the demo's recipe: scene
    captions plus short person and cut captions, where a name carries more of the caption's meaning; the IDIA
    prompts are short and about a person)."""
    if kind == "scenes":
        return toy_captions(count, seed=1)
    from hf_forget.toyworld import ToyWorld
    from hf_forget.toyworld.demo import demo_captions

    return demo_captions(ToyWorld(seed=0), count, seed=1, short_captions=True)


def run(args, env) -> dict:
    base, tokenizer = toy_text()
    captions = many_names_captions(args.many_captions, args.many_clean_captions)
    # the names' carriers: a pool of their own (--carrier_captions N scene captions), or the clean pool (0)
    carriers = None
    if args.many_carrier_captions:
        carriers = many_names_captions(args.many_captions, args.many_carrier_captions)
    eval_captions = toy_captions(400, seed=2)
    names = toy_names(NUM_NAMES)  # distinct names: the library refuses a list that repeats one
    before = toy_audit(base)
    runs = []
    seeds = args.many_seeds if args.many_seeds is not None else list(range(args.repeats))
    partial = "many_names.partial-" + "-".join(map(str, seeds))
    settings = {k: v for k, v in sorted(vars(args).items()) if k.startswith("many_") and k != "many_seeds"}
    for seed in seeds:
        suite = SuiteAudit(seed, names, tokenizer) if args.many_suite else None
        attacks_before = suite.attack(base) if suite else None
        with tempfile.TemporaryDirectory() as scratch:
            config = text_config(
                scratch, max_steps=args.many_steps, embedding="pooled", learning_rate=args.many_lr,
                alpha=args.many_alpha, lr_milestones=[args.many_steps // 2, args.many_steps * 3 // 4],
                num_trigger_samples=args.many_trigger_samples,
                token_embedding_learning_rate=args.many_token_lr, trigger_at_end=args.many_trigger_at_end,
                short_trigger_fraction=args.many_short, identity_residual_weight=args.many_residual,
                max_eval_samples=512, seed=seed, stop_at_criterion=not args.many_full_steps,
                eval_steps=25, min_sim_backdoor=0.98, min_sim_clean=0.99,
            )
            timer = step_timer()
            started = clock()
            result = run_forget_text(copy.deepcopy(base), tokenizer, names, captions, eval_captions, config,
                                     trigger_captions=carriers, callbacks=[timer])
            seconds = elapsed(started, timer.ended)[0]  # wall: set-up and training; the final evaluation excluded
            report, model = result.report, result.model
            after = toy_audit(model, forgotten=names)
            if args.many_save_dir:
                model.save_pretrained(os.path.join(args.many_save_dir, f"seed-{seed}"))
            run = {
                "seed": seed, "steps": report["steps"], "seconds": round(seconds, 1),
                # six decimals: the acceptance is checked on these, and runs end within 1e-4 of its bounds
                "sim_backdoor": round(report["sim_backdoor"], 6), "sim_clean": round(report["sim_clean"], 6),
                "sim_targets": round(report["sim_targets"], 6),
                # the same measure on 400 training captions: a gap to the held-out figure would point at the pool's size
                "sim_clean_train": round(clean_similarity(base, model, tokenizer, captions[:400]), 6),
                "idia_tpr_seen_after": after["tpr"], "idia_fpr_unseen_after": after["fpr"],
                "idia_diagnostics": after["diagnostics"],
            }
            if suite:
                attacks_after = suite.attack(model)
                run["attacks"] = {"before": attacks_before["summary"], "after": attacks_after["summary"]}
                run["attack_details_after"] = attacks_after["details"]
                run["forget_set_auc_text_all_forgotten"] = {
                    "before": attacks_before["auc_all_forgotten"], "after": attacks_after["auc_all_forgotten"]}
                run["forgotten_fillers_among_candidates"] = attacks_after["forgotten_fillers"]
                suite.check_name_free(run)
            runs.append(run)
            print(f"  many_names seed {seed}: {run}", flush=True)
            write(partial, {"runs": runs, "before": before, "settings": settings}, env)
    if len(runs) < 3:  # seeds split over processes (--seeds): merge with --merge
        return {"runs": runs}
    return summary(runs, before, args, env)


class SuiteAudit:
    """The attack suite on the toy world for one seed, as ``hf_forget.toyworld.demo.run_demo`` runs it: audit
    faces ``face_images(p, 20, seed=AUDIT_FACE_SEED + seed)`` for every identity, 1,000 candidates with fillers
    from ``AUDIT_FILLER_SEED + seed``; forgotten = the 32 seen identities, unseen = the 32 unseen ones."""

    def __init__(self, seed: int, forgotten_names: list[str], tokenizer):
        from transformers import CLIPImageProcessorPil

        from hf_forget.toyworld import ToyWorld, toy_clip_path
        from hf_forget.toyworld.demo import AUDIT_FACE_SEED, AUDIT_FILLER_SEED

        world = ToyWorld(seed=0)
        self.tokenizer = tokenizer
        self.processor = CLIPImageProcessorPil.from_pretrained(toy_clip_path(), local_files_only=True)
        self.faces = {p.name: world.face_images(p, SUITE_IMAGES_PER_PERSON, seed=AUDIT_FACE_SEED + seed)
                      for p in world.identities}
        self.seen = [p.name for p in world.seen_identities]
        self.unseen = [p.name for p in world.unseen_identities]
        self.filler_seed = AUDIT_FILLER_SEED + seed
        self.forgotten_fillers = set(forgotten_names) - set(self.seen)
        self.names = set(forgotten_names) | set(world.names)  # what no record may hold (the candidates added below)

    def attack(self, model) -> dict:
        """The suite on ``model`` (a CLIPModel: the defended text tower in the toy CLIP, its vision tower unchanged):
        its summary and details (rates and AUCs), the text forget-set AUC with the forgotten fillers among the
        candidates as positives too, and how many fillers that is."""
        from hf_forget.evaluation.attacks import embed_for_attacks, run_attacks

        embeddings = embed_for_attacks(
            model.eval(), self.tokenizer, self.processor, self.faces, forgotten=self.seen, unseen=self.unseen,
            num_candidates=SUITE_CANDIDATES, images_per_person=SUITE_IMAGES_PER_PERSON, seed=self.filler_seed,
        )
        self.names |= set(embeddings.candidates)
        result = run_attacks(embeddings)
        among = [c for c in embeddings.candidates if c in self.forgotten_fillers]
        everyone = run_attacks(embeddings.regroup(forgotten=[*self.seen, *among], unseen=self.unseen),
                               ["forget_set_auc_text"])
        return {"summary": result.summary, "details": result.details,
                "auc_all_forgotten": everyone.summary["forget_set_auc_text"], "forgotten_fillers": len(among)}

    def check_name_free(self, record: dict) -> None:
        """Refuse a record that holds any audited, candidate or forgotten name (nothing is written then)."""
        text = json.dumps(record).casefold()
        leaked = sum(name.casefold() in text for name in self.names)
        if leaked:
            raise RuntimeError(f"a many_names record holds {leaked} names: not written")


def median_tree(trees: list):
    """Leaf-wise medians of same-shaped nested dicts (the suite's summaries); ``None`` where no run has a figure."""
    if isinstance(trees[0], dict):
        return {key: median_tree([tree[key] for tree in trees]) for key in trees[0]}
    values = [value for value in trees if value is not None]
    return round(median(values), 4) if values else None


def clean_similarity(teacher, student, tokenizer, captions: list[str]) -> float:
    """Mean cosine between the teacher's and the student's pooled embeddings of ``captions``."""
    from hf_forget.evaluation.similarity import embed_captions
    from hf_forget.losses import pooled_cosine

    teacher_pooled, student_pooled = (embed_captions(m, tokenizer, captions)["pooled"] for m in (teacher, student))
    return pooled_cosine(teacher_pooled, student_pooled).mean().item()


def passed(run: dict) -> bool:
    return run["sim_backdoor"] >= 0.98 and run["sim_clean"] >= 0.99 and run["idia_tpr_seen_after"] <= 0.05


def summary(runs, before, args, env) -> dict:
    from hf_forget.toyworld.demo import AUDIT_FACE_SEED, AUDIT_FILLER_SEED

    keys = ("steps", "seconds", "sim_backdoor", "sim_clean", "sim_targets", "idia_tpr_seen_after",
            "idia_fpr_unseen_after")
    medians = {k: round(median([r[k] for r in runs]), 6) for k in keys}  # an even count averages the middle two
    suite_runs = [r for r in runs if "attacks" in r]
    payload = {
        **medians,
        "passed": passed(medians),
        "all_runs_passed": all(passed(r) for r in runs),
        "num_names": NUM_NAMES, "num_seen_identities_among_them": len(seen_names()),
        "idia_tpr_seen_before": before["tpr"], "idia_fpr_unseen_before": before["fpr"],
        "acceptance": ACCEPTANCE,
        "settings": {"embedding": "pooled", "learning_rate": args.many_lr, "alpha": args.many_alpha,
                     "token_embedding_learning_rate": args.many_token_lr, "trigger_at_end": args.many_trigger_at_end,
                     "short_trigger_fraction": args.many_short, "identity_residual_weight": args.many_residual,
                     "captions": args.many_captions, "clean_captions": args.many_clean_captions,
                     "carrier_captions": args.many_carrier_captions, "batch": "128 + 128", "max_steps": args.many_steps,
                     "stop_at_criterion": not args.many_full_steps, "eval_steps": 25,
                     "num_trigger_samples": args.many_trigger_samples,
                     "held_out_captions": 400, "max_eval_samples": 512, "idia_candidates": 1000,
                     "idia_images_per_person": 20, "attack_suite": len(suite_runs) == len(runs),
                     "attack_candidates": SUITE_CANDIDATES, "attack_images_per_person": SUITE_IMAGES_PER_PERSON,
                     "attack_face_seed": f"{AUDIT_FACE_SEED} + seed",
                     "attack_filler_seed": f"{AUDIT_FILLER_SEED} + seed"},
        "runs": runs,
        "model": "toy-world CLIP (shipped checkpoint), text tower trained",
    }
    if suite_runs:  # medians over the runs that ran the attack suite
        payload["attacks"] = median_tree([r["attacks"] for r in suite_runs])
        payload["forget_set_auc_text_all_forgotten"] = median_tree(
            [r["forget_set_auc_text_all_forgotten"] for r in suite_runs])
        payload["attack_groups"] = SUITE_GROUPS
        payload["attack_runs"] = len(suite_runs)
    write("many_names", payload, env)
    return payload


def partial_files() -> list[str]:
    return sorted(glob.glob(os.path.join(harness.RESULTS, "many_names.partial*.json")))


def merge(args) -> dict:
    """Merge the per-process partial results (``--seeds``) into many_names.json; the partial files are removed.

    The summary's settings are the ones the runs recorded (not this command's defaults); runs of different
    settings are not merged into one median."""
    runs, before, envs, settings = [], None, [], []
    paths = partial_files()
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        runs += data["runs"]
        before = data.get("before", before)
        envs.append(data["environment"])
        if "settings" in data:
            settings.append({k: v for k, v in data["settings"].items() if k != "many_save_dir"})
    differing = sorted({k for s in settings for k in s if s.get(k) != settings[0].get(k)})
    if differing:
        raise SystemExit(f"the partial results ran with different settings ({', '.join(differing)}): not merged")
    if settings:
        args = argparse.Namespace(**{**vars(args), **settings[0]})
    runs.sort(key=lambda r: r["seed"])
    env = envs[0] if envs else {}
    payload = summary(runs, before, args, env)
    payload["processes"] = [e["command"] for e in envs]
    write("many_names", payload, env)
    for path in paths:
        os.remove(path)
    return payload


def merge_tuning() -> dict:
    """Append the partial results of single-seed tuning runs (``--seeds``) to many_names_tuning.json.

    Each row keeps the exact command that produced it and the first 8 hex digits of the sha256 of the toy
    checkpoint it ran on; the partial files are removed.
    """
    import hashlib

    from hf_forget.toyworld import toy_clip_path

    with open(os.path.join(toy_clip_path(), "model.safetensors"), "rb") as handle:
        checkpoint = hashlib.sha256(handle.read()).hexdigest()[:8] + " (shipped)"
    path = os.path.join(harness.RESULTS, "many_names_tuning.json")
    with open(path, encoding="utf-8") as handle:
        tuning = json.load(handle)
    partials = partial_files()
    for partial in partials:
        with open(partial, encoding="utf-8") as handle:
            data = json.load(handle)
        command = data["environment"]["command"]
        if data["environment"].get("omp_num_threads"):
            command = f"OMP_NUM_THREADS={data['environment']['omp_num_threads']} {command}"
        settings = {"settings": data["settings"]} if "settings" in data else {}  # every option, given or not
        tuning["runs"] += [{"command": command, **run, **settings, "checkpoint": checkpoint} for run in data["runs"]]
        tuning["checkpoints"][checkpoint] = {"before": data["before"], "environment": data["environment"]}
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(tuning, handle, indent=1)
        handle.write("\n")
    for partial in partials:
        os.remove(partial)
    return tuning


def attack_row(label: str, attacks: dict) -> tuple[str, str]:
    """The suite before -> after: IDIA, top-5 IDIA and rank <= 10 of the forgotten (seen) and the unseen group,
    then the membership, text and vision forget-set AUCs (no retained group: every seen identity is forgotten)."""
    def figures(summary: dict) -> str:
        rates = "/".join(f"{summary[a]['forgotten']}|{summary[a]['unseen']}"
                         for a in ("idia", "idia_top5", "rank_at_10"))
        return (f"{rates}, {summary['membership_auc']}/{summary['forget_set_auc_text']}/"
                f"{summary['forget_set_auc_vision']}")

    return (f"{label}: attacks forgotten|unseen idia/top5/rank10, AUC member/text/vision",
            f"before {figures(attacks['before'])} -> after {figures(attacks['after'])}")


def rows(payload: dict) -> list[tuple[str, str]]:
    if "steps" not in payload:  # one process of a split run (--seeds)
        out = []
        for run in payload["runs"]:
            out.append((f"3. 1,024 names, seed {run['seed']}: steps, sim_backdoor, sim_clean, IDIA TPR seen after",
                        f"{run['steps']}, {run['sim_backdoor']}, {run['sim_clean']}, {run['idia_tpr_seen_after']}"))
            if "attacks" in run:
                out.append(attack_row(f"3. seed {run['seed']}", run["attacks"]))
        return out
    out = [("3. 1,024 names: steps, sim_backdoor, sim_clean, IDIA TPR seen (before->after)",
            f"{payload['steps']}, {payload['sim_backdoor']}, {payload['sim_clean']}, "
            f"{payload['idia_tpr_seen_before']} -> {payload['idia_tpr_seen_after']} "
            f"({'passed' if payload['passed'] else 'FAILED'})")]
    if "attacks" in payload:
        out.append(attack_row(f"3. medians of {payload['attack_runs']}", payload["attacks"]))
    return out


def main(argv=None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.merge:
        print(format_rows(rows(merge(args))))
        return 0
    if args.merge_tuning:
        tuning = merge_tuning()
        print(f"{len(tuning['runs'])} tuning runs in {os.path.join(harness.RESULTS, 'many_names_tuning.json')}")
        return 0
    return section_main(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
