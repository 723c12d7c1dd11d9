"""preserve_neighbours: the vocabulary words nearest a forgotten name are kept as clean samples."""

import itertools
import string

import pytest
from transformers import BertTokenizer

from hf_forget import ForgetInputError, TextForgetConfig
from hf_forget.trainers.text import TextForgetTrainer
from hf_forget.data.neighbours import mix_in, neighbour_words, vocabulary_words

from conftest import held_out_captions, training_captions
from test_any_encoder import tiny_bert

WORDS = ["the", "tennis", "market", "river", "apple", "jane", "doe", "person", "garden", "music", "at", "of"]


def word_bert_tokenizer(tmp_path) -> BertTokenizer:
    """WordPiece with a few whole words, plus characters so that any ASCII text tokenizes."""
    chars = string.ascii_lowercase + string.digits + string.punctuation
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *chars, *(f"##{c}" for c in chars)]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab), encoding="utf-8")
    return BertTokenizer(str(tmp_path / "vocab.txt"), model_max_length=96)


def test_vocabulary_words_are_whole_words_only(tmp_path):
    words = vocabulary_words(word_bert_tokenizer(tmp_path))
    assert words == sorted(w for w in WORDS if len(w) >= 3)  # no pieces, specials, characters or 2-letter words


def test_neighbour_words_never_include_the_names_own_words(tmp_path):
    tokenizer = word_bert_tokenizer(tmp_path)
    model = tiny_bert(tokenizer)
    words = neighbour_words(model, tokenizer, ["Jane Doe"], per_name=4, pooling="mean", exclude=["a person"])
    assert len(words) == 4 and set(words) <= set(WORDS)
    assert not {"jane", "doe", "person"} & set(words)
    assert words == sorted(words) == neighbour_words(model, tokenizer, ["Jane Doe"], 4, "mean", exclude=["a person"])
    assert neighbour_words(model, tokenizer, ["Jane Doe"], per_name=0) == []


def test_mix_in_replaces_an_even_share_and_uses_every_word_alike():
    clean = [f"caption {i}" for i in range(100)]
    mixed = mix_in(clean, ["tennis", "music", "river"], 0.25, seed=0)
    replaced = [i for i, (a, b) in enumerate(zip(clean, mixed)) if a != b]
    assert len(replaced) == 25 and all(b - a == 4 for a, b in itertools.pairwise(replaced))  # spread evenly
    counts = sorted(mixed.count(w) for w in ("tennis", "music", "river"))
    assert counts == [8, 8, 9]
    assert mix_in(clean, [], 0.25) == clean


def test_trainer_keeps_neighbour_words_as_clean_samples(tmp_path):
    tokenizer = word_bert_tokenizer(tmp_path)
    config = TextForgetConfig(
        output_dir=str(tmp_path / "out"), preserve_neighbours=3, neighbour_fraction=0.5,
        embedding="pooled", pooling="mean", max_steps=1, per_device_train_batch_size=8, num_trigger_samples=64,
        max_eval_samples=8, report_to="none", disable_tqdm=True,
    )
    trainer = TextForgetTrainer(tiny_bert(tokenizer), config, tokenizer, training_captions(200), ["Jane Doe"],
                                eval_captions=held_out_captions(20))
    clean = [tokenizer.decode(ids, skip_special_tokens=True) for ids in trainer.train_dataset.clean]
    single = [text for text in clean if text in WORDS]
    assert len(single) == 32 and len(set(single)) == 3  # half of the 64 clean samples, three words per name
    assert not any(word in single for word in ("jane", "doe", "person"))


@pytest.mark.parametrize("bad", [{"preserve_neighbours": -1}, {"neighbour_fraction": 0.0}, {"neighbour_fraction": 1.0}])
def test_bad_neighbour_settings_are_rejected(tmp_path, bad):
    with pytest.raises(ForgetInputError):
        TextForgetConfig(output_dir=str(tmp_path), **bad)


def test_a_vocabulary_without_whole_words_leaves_the_clean_samples_alone(tmp_path):
    from hf_forget.testing import tiny_clip_text_model

    model, tokenizer = tiny_clip_text_model()  # byte-level BPE without merges: no whole words
    assert vocabulary_words(tokenizer) == []
    def config(**kwargs):
        return TextForgetConfig(
            output_dir=str(tmp_path / "out"), embedding="pooled", max_steps=1,
            per_device_train_batch_size=8, num_trigger_samples=32, max_eval_samples=8, report_to="none", **kwargs,
        )

    captions = training_captions(200)
    with_option = TextForgetTrainer(model, config(preserve_neighbours=3), tokenizer, captions, ["Jane Doe"],
                                    eval_captions=held_out_captions(20))
    without = TextForgetTrainer(model, config(), tokenizer, captions, ["Jane Doe"], eval_captions=held_out_captions(20))
    assert with_option.train_dataset.clean == without.train_dataset.clean
