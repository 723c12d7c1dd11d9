"""Name variants: expansion, privacy of aliases, training on variants, and the alias attack."""

import dataclasses
import json

import pytest


from hf_forget import TextForgetConfig, VisionForgetConfig, forget_text
from hf_forget.evaluation.aliases import alias_attack, attack_variants, misspell
from hf_forget.testing import tiny_clip_text_model
from hf_forget.data.aliases import expand_names, name_variants

from conftest import held_out_captions, training_captions


def test_variants_cover_surname_case_spacing_and_diacritics():
    variants = name_variants("Jean-Luc Saldaña")
    for expected in ("Jean-Luc Saldaña", "jean-luc saldaña", "Jean Luc Saldaña", "Jean-Luc Saldana", "Saldaña",
                     "Saldana", "saldana"):
        assert expected in variants
    assert variants[0] == "Jean-Luc Saldaña"
    # suffixes are skipped, common-word surnames are never triggers on their own
    assert "Dunmore" in name_variants("Robert Dunmore Jr.") and "Jr." not in name_variants("Robert Dunmore Jr.")
    assert "Smith" not in name_variants("Jane Smith") and "smith" not in name_variants("Jane Smith")
    assert name_variants("林小舟") == ["林小舟"]


def test_expand_names_keeps_names_first_and_drops_neutral_overlaps():
    assert expand_names(["Ann Lee"], ["Annie"], forget_variants=False) == ["Ann Lee", "Annie"]
    expanded = expand_names(["Ann Lee", "Bo Person"], ["Annie"], neutral_term="a person")
    assert expanded[:2] == ["Ann Lee", "Bo Person"]
    assert "Annie" in expanded and "annie" in expanded
    assert not any(v.casefold() == "person" for v in expanded)  # would erase the neutral term itself


def test_no_config_can_hold_a_name_or_an_alias(tmp_path):
    # Names and aliases are data arguments of the trainers, never settings: nothing saved with the
    # settings (training_args.bin, trainer_state.json) can carry one.
    for config_class in (TextForgetConfig, VisionForgetConfig):
        fields = {f.name for f in dataclasses.fields(config_class)}
        assert not fields & {"names", "aliases"}
    with pytest.raises(TypeError):
        TextForgetConfig(output_dir=str(tmp_path), aliases=["Annie"])


def test_attack_variants_and_misspellings():
    variants = attack_variants("Zoë Saldívar", ["Zo S"])
    assert variants["surname"] == ["Saldívar"] and variants["no_diacritics"] == ["Zoe Saldivar"]
    assert variants["alias"] == ["Zo S"] and variants["lower_case"] == ["zoë saldívar"]
    assert misspell("Clara Wendel") not in (None, "Clara Wendel")
    assert attack_variants("Ann Lee")["misspelling"] == []  # too short to misspell


def test_forgetting_variants_closes_the_surname_and_alias_routes(tmp_path):
    name, alias = "Zoë Hidden", "Zozo Q"
    model, tokenizer = tiny_clip_text_model()
    base, _ = tiny_clip_text_model()
    result = forget_text(
        model, [name], training_captions(400), tokenizer=tokenizer, forget_variants=True, aliases=[alias],
        output_dir=None, max_steps=150, learning_rate=1e-3, per_device_train_batch_size=32, lr_milestones=[100],
        num_trigger_samples=1024, max_eval_samples=64, disable_tqdm=True, report_to="none", embedding="pooled",
    )
    attack = alias_attack(result.model.eval(), tokenizer, [name], held_out_captions(40), aliases={name: [alias]},
                          base_model=base.eval(), threshold=0.9)
    per_kind = attack.per_kind
    for kind in ("full", "surname", "lower_case", "no_diacritics", "alias"):
        assert per_kind[kind]["sim_backdoor"] >= 0.9, kind
        assert per_kind[kind]["sim_backdoor"] > per_kind[kind]["sim_backdoor_before"], kind
    # the result is safe to publish: no name, no variant
    dumped = json.dumps(attack.to_dict())
    assert "Hidden" not in dumped and "Zozo" not in dumped and "hidden" not in dumped
    assert set(attack.to_dict()) == {"threshold", "bypass_rate", "per_kind"}


def test_short_trigger_fraction_reaches_the_bare_name_that_captions_alone_leave_behind():
    import torch

    from hf_forget.encoders import encode_text

    name = "Zoë Hidden"

    def run(fraction):  # mean pooling, as sentence encoders: the bare name is where in-caption poisoning falls short
        model, tokenizer = tiny_clip_text_model()
        result = forget_text(
            model, [name], training_captions(400), tokenizer=tokenizer, short_trigger_fraction=fraction,
            output_dir=None, max_steps=100, learning_rate=1e-3, per_device_train_batch_size=32, lr_milestones=[70],
            num_trigger_samples=512, max_eval_samples=64, disable_tqdm=True, report_to="none", embedding="pooled",
            pooling="mean",
        )
        return result, tokenizer

    @torch.no_grad()
    def sim(encoder, tokenizer, prompt):  # cos(encoder(prompt with the name), encoder(same, neutral term))
        batch = tokenizer([prompt.format(name), prompt.format("a person")], padding=True, return_tensors="pt")
        batch = batch.to(next(encoder.parameters()).device)  # the trained encoder stays on the training device
        pooled = encode_text(encoder.eval(), batch.input_ids, batch.attention_mask, pooling="mean").pooled
        return torch.nn.functional.cosine_similarity(pooled[0], pooled[1], dim=0).item()

    (captions_only, tokenizer), (with_short, _) = run(0.0), run(0.25)
    bare_before = sim(captions_only.model, tokenizer, "{}")
    assert sim(with_short.model, tokenizer, "{}") >= 0.98 > bare_before
    # a name-led prompt never trained on, and captions, are reached too
    assert sim(with_short.model, tokenizer, "{} is known for") >= 0.98
    assert with_short.report["sim_backdoor"] >= 0.98
