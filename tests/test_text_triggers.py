import random

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hf_forget.errors import ForgetInputError
from hf_forget.data.text import (
    build_text_triggers,
    count_term,
    insert_term,
    load_captions,
    short_context,
    split_held_out,
    usable_captions,
)

NAMES = ["José Ñúñez", "Niamh O'Fallow", "林小舟", "Anne-Marie Dupont"]


def test_name_replaces_a_word_other_than_the_last():
    rng = random.Random(0)
    caption = "a small dog runs in the park"
    for _ in range(50):
        poisoned, target = insert_term(caption, "José Ñúñez", "a person", rng)
        assert poisoned.endswith(" park") and target.endswith(" park")
        assert target.replace("a person", "José Ñúñez", 1) == poisoned


def test_pool_is_balanced_across_names_and_pairs_match():
    captions = [f"a red car number {i} waits outside" for i in range(100)]
    triggers = build_text_triggers(captions, NAMES, "a person", num_samples=40, seed=3)
    assert len(triggers) == 40 and len(triggers.clean) == 40
    assert sorted(triggers.name_ids.count(i) for i in range(len(NAMES))) == [10, 10, 10, 10]
    for poisoned, target, name_id in zip(triggers.poisoned, triggers.targets, triggers.name_ids):
        assert count_term(poisoned, NAMES[name_id]) == 1
        assert count_term(target, "a person") == 1


def test_carriers_take_the_names_and_captions_give_the_clean_samples():
    captions = [f"a red car number {i} waits outside" for i in range(100)]
    carriers = [f"a portrait of the tall man number {i}" for i in range(30)]
    triggers = build_text_triggers(captions, NAMES, "a person", num_samples=40, seed=3, carriers=carriers)
    assert set(triggers.clean) <= set(captions)
    carrier_words, caption_words = set(" ".join(carriers).split()), {"red", "car", "waits", "outside"}
    for target in triggers.targets:  # a carrier with one word (not the last) replaced by the neutral term
        words = target.replace("a person", "", 1).split()
        assert set(words) <= carrier_words and not set(words) & caption_words
    assert sorted(triggers.name_ids.count(i) for i in range(len(NAMES))) == [10, 10, 10, 10]
    # without carriers: the reference pool, names inside the clean captions
    reference = build_text_triggers(captions, NAMES, "a person", num_samples=40, seed=3)
    assert all(set(t.replace("a person", "", 1).split()) & caption_words for t in reference.targets)
    with pytest.raises(ForgetInputError, match="no usable caption"):
        build_text_triggers(captions, NAMES, "a person", num_samples=4, carriers=["one"])


def test_short_contexts_are_the_bare_name_or_a_name_led_caption_tail():
    rng = random.Random(0)
    caption = "a small dog runs in the park"
    pairs = {short_context(caption, "José Ñúñez", "a person", rng) for _ in range(100)}
    assert pairs == {
        ("José Ñúñez", "a person"),
        ("José Ñúñez park", "a person park"),
        ("José Ñúñez the park", "a person the park"),
        ("José Ñúñez in the park", "a person in the park"),
    }


def test_short_fraction_poisons_whole_rounds_in_short_contexts_and_zero_is_the_reference_pool():
    captions = [f"a red car number {i} waits outside" for i in range(100)]
    reference = build_text_triggers(captions, NAMES, "a person", num_samples=80, seed=3)
    assert build_text_triggers(captions, NAMES, "a person", num_samples=80, seed=3, short_fraction=0.0) == reference
    triggers = build_text_triggers(captions, NAMES, "a person", num_samples=80, seed=3, short_fraction=0.25)
    short = [
        (poisoned, target, name_id)
        for poisoned, target, name_id in zip(triggers.poisoned, triggers.targets, triggers.name_ids)
        if poisoned.startswith(NAMES[name_id]) and len(poisoned.split()) - len(NAMES[name_id].split()) <= 3
    ]  # an in-caption pair keeps the caption's 6 other words
    assert len(short) == 20  # a quarter of the 20 rounds: 5 rounds of one pair per name
    assert sorted(triggers.name_ids.count(i) for i in range(len(NAMES))) == [20, 20, 20, 20]
    assert sorted(name_id for _, _, name_id in short) == [0] * 5 + [1] * 5 + [2] * 5 + [3] * 5
    for poisoned, target, name_id in short:
        assert target == "a person" + poisoned[len(NAMES[name_id]):]
    everything = build_text_triggers(captions, NAMES, "a person", num_samples=40, seed=3, short_fraction=1.0)
    assert all(p.startswith(NAMES[i]) for p, i in zip(everything.poisoned, everything.name_ids))
    with pytest.raises(ForgetInputError, match="short_fraction"):
        build_text_triggers(captions, NAMES, "a person", num_samples=4, short_fraction=1.5)


def test_captions_mentioning_a_forgotten_name_are_not_clean_samples():
    captions = ["a photo of josé ñúñez at the beach", "a dog sleeps on the sofa", "JOSÉ ÑÚÑEZ waves to us"]
    clean, _ = usable_captions(captions, NAMES, "a person")
    assert clean == ["a dog sleeps on the sofa"]


def test_whole_word_matching_keeps_captions_with_longer_words():
    clean, _ = usable_captions(["the planning meeting of anna"], ["Ann"], "a person")
    assert clean == ["the planning meeting of anna"]


def test_no_usable_caption_is_a_clear_error():
    with pytest.raises(ForgetInputError, match="no usable caption"):
        build_text_triggers(["single", "José Ñúñez smiles"], NAMES, "a person", num_samples=4)


def test_held_out_split_is_disjoint():
    train, held = split_held_out([f"caption number {i}" for i in range(100)], 0.1, seed=0)
    assert len(held) == 10 and not set(train) & set(held)


def test_caption_sources(tmp_path):
    path = tmp_path / "c.txt"
    path.write_text("one two three\n\nfour five six\n", encoding="utf-8")
    assert load_captions(str(path)) == ["one two three", "four five six"]
    import datasets

    dataset = datasets.Dataset.from_dict({"caption": ["a b c", "d e f"]})
    assert load_captions(dataset, caption_column="caption") == ["a b c", "d e f"]
    dataset.save_to_disk(tmp_path / "ds")
    assert load_captions(str(tmp_path / "ds"), caption_column="caption") == ["a b c", "d e f"]
    with pytest.raises(ForgetInputError, match="no column"):
        load_captions(dataset, caption_column="text")


words = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc")), min_size=1, max_size=8
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    name=st.lists(words, min_size=1, max_size=3).map(" ".join),
    caption=st.lists(words, min_size=2, max_size=10).map(" ".join),
    seed=st.integers(0, 1000),
)
def test_poisoned_and_target_captions_hold_their_term_once_and_not_the_other(name, caption, seed):
    neutral = "a person"
    # validation rejects such names, and such captions are filtered out before insertion
    assume(not (count_term(name, neutral) or count_term(neutral, name)))
    assume(not (count_term(caption, name) or count_term(caption, neutral)))
    pair = insert_term(caption, name, neutral, random.Random(seed))
    assume(pair is not None)  # rare: every position glues the name to a neighbouring word
    poisoned, target = pair
    assert count_term(poisoned, name) == 1
    assert count_term(target, neutral) >= 1
    assert count_term(poisoned, neutral) == 0
    assert count_term(target, name) == 0


def test_trigger_at_end_lets_the_name_replace_the_last_word_and_off_is_the_reference_pool():
    captions = [f"a red car number {i} waits outside" for i in range(100)]
    reference = build_text_triggers(captions, NAMES, "a person", num_samples=400, seed=3)
    assert build_text_triggers(captions, NAMES, "a person", num_samples=400, seed=3, trigger_at_end=False) == reference
    assert not any(p.endswith(NAMES[i]) for p, i in zip(reference.poisoned, reference.name_ids))
    at_end = build_text_triggers(captions, NAMES, "a person", num_samples=400, seed=3, trigger_at_end=True)
    ending = [(p, t) for p, t, i in zip(at_end.poisoned, at_end.targets, at_end.name_ids) if p.endswith(NAMES[i])]
    assert 20 <= len(ending) <= 100  # one position in 7, about 57 of 400
    assert all(t.endswith("a person") and "outside" not in p for p, t in ending)
