"""What hf-forget reads: caption files through `datasets` (formats, compression, encodings) without leaving a
copy behind, captions bounded in length, names files and repeated --names, progress bars and unwrapping."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import tempfile
from pathlib import Path

import pytest
import torch

from hf_forget.cli import main
from hf_forget.config import parse_names
from hf_forget.errors import ForgetInputError
from hf_forget.data.text import (
    MAX_CAPTION_WORDS,
    build_text_triggers,
    load_captions,
    split_held_out,
    truncate_caption,
    usable_captions,
)

from conftest import training_captions

CAPTIONS = ["a dog runs in the park", "a cat sleeps at night", "an old boat waits by the road"]
TINY_RUN = ["--max_steps", "2", "--per_device_train_batch_size", "8", "--num_trigger_samples", "16",
            "--max_eval_samples", "8", "--disable_tqdm", "true", "--report_to", "none"]  # fmt: skip


def write_caption_files(folder: Path, captions: list[str]) -> dict[str, Path]:
    """The same captions in every format `load_captions` reads."""
    import datasets

    files = {
        "txt": folder / "c.txt", "csv": folder / "c.csv", "tsv": folder / "c.tsv", "json": folder / "c.json",
        "jsonl": folder / "c.jsonl", "parquet": folder / "c.parquet", "gz": folder / "c.txt.gz",
        "bz2": folder / "c.txt.bz2", "xz": folder / "c.txt.xz", "csv.gz": folder / "c.csv.gz",
    }  # fmt: skip
    # a byte-order mark, Windows line ends and blank lines: none of them becomes (part of) a caption
    files["txt"].write_bytes(("\ufeff" + "\r\n".join(captions) + "\r\n\r\n").encode("utf-8"))
    files["csv"].write_text("text,id\n" + "\n".join(f'"{c}",{i}' for i, c in enumerate(captions)), encoding="utf-8")
    files["tsv"].write_text("text\tid\n" + "\n".join(f"{c}\t{i}" for i, c in enumerate(captions)), encoding="utf-8")
    files["json"].write_text(json.dumps([{"text": c} for c in captions]), encoding="utf-8")
    files["jsonl"].write_text("\n".join(json.dumps({"text": c}) for c in captions), encoding="utf-8")
    datasets.Dataset.from_dict({"text": captions}).to_parquet(str(files["parquet"]))
    for key, opener in (("gz", gzip.open), ("bz2", bz2.open), ("xz", lzma.open)):
        with opener(files[key], "wt", encoding="utf-8") as handle:
            handle.write("\n".join(captions))
    with gzip.open(files["csv.gz"], "wt", encoding="utf-8") as handle:
        handle.write(files["csv"].read_text(encoding="utf-8"))
    return files


def test_every_caption_format_reads_the_same_captions_and_a_header_is_no_caption(tmp_path):
    for kind, path in write_caption_files(tmp_path, CAPTIONS).items():
        assert load_captions(str(path)) == CAPTIONS, kind


def test_a_caption_column_other_than_text_is_chosen_with_caption_column(tmp_path):
    path = tmp_path / "c.tsv"
    path.write_text("id\tcaption\n" + "\n".join(f"{i}\t{c}" for i, c in enumerate(CAPTIONS)), encoding="utf-8")
    assert load_captions(str(path), caption_column="caption") == CAPTIONS
    with pytest.raises(ForgetInputError, match="no column 'text'.*'caption'"):
        load_captions(str(path))


@pytest.mark.parametrize(
    "content, message",
    [
        ("\n".join(CAPTIONS).encode("latin-1") + b" caf\xe9", "not UTF-8"),
        ("\n".join(CAPTIONS).encode("utf-16"), "not UTF-8"),
        (bytes(range(256)) * 4, "not UTF-8"),
        (b"a dog\x00runs in the park\n", "NUL bytes"),
    ],
    ids=["latin-1", "utf-16", "binary", "nul-bytes"],
)
def test_a_caption_file_that_is_not_utf8_text_is_one_clear_error(tmp_path, content, message):
    path = tmp_path / "captions.txt"
    path.write_bytes(content)
    with pytest.raises(ForgetInputError, match=message):
        load_captions(str(path))


@pytest.fixture
def datasets_cache(tmp_path, monkeypatch) -> Path:
    """The user's datasets cache, pointed at an empty temporary folder (the variable and the constant read at import)."""
    import datasets.config

    cache = tmp_path / "user_datasets_cache"
    cache.mkdir()
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    monkeypatch.setattr(datasets.config, "DEFAULT_HF_DATASETS_CACHE", cache, raising=False)
    return cache


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"" for p in folder.rglob("*")}


def _own_temporary_folders() -> set[str]:
    return {name for name in os.listdir(tempfile.gettempdir()) if name.startswith("hf-forget-captions-")}


def test_reading_captions_leaves_no_copy_in_the_datasets_cache(tmp_path, datasets_cache):
    """Issue 26: `load_dataset` copies a .csv/.json/.jsonl corpus, names and all, into the datasets cache."""
    captions = [*CAPTIONS, "Jane Doe walks in the park"]  # a caption that names the person to forget
    files = write_caption_files(tmp_path, captions)
    before, temporary = _snapshot(datasets_cache), _own_temporary_folders()
    for path in files.values():
        assert load_captions(str(path)) == captions
    assert _snapshot(datasets_cache) == before == {}
    assert _own_temporary_folders() == temporary  # the throw-away cache is gone too


@pytest.mark.parametrize("kind", ["csv", "json", "jsonl"])
def test_a_run_with_csv_json_or_jsonl_captions_leaves_the_datasets_cache_unchanged(
    tiny_text_encoder_dir, tmp_path, datasets_cache, capsys, kind
):
    files = write_caption_files(tmp_path, training_captions(200) + ["Jane Doe walks in the park"])
    before = _snapshot(datasets_cache)
    code = main(["text", "--model_name_or_path", str(tiny_text_encoder_dir), "--names", "Jane Doe",
                 "--captions", str(files[kind]), "--output_dir", str(tmp_path / "out"), *TINY_RUN])  # fmt: skip
    assert code in (0, 3), capsys.readouterr().err
    assert _snapshot(datasets_cache) == before
    assert not any("jane" in name.casefold() for name in map(str, datasets_cache.rglob("*")))


def test_a_long_caption_is_cut_to_the_context_before_any_per_sample_work(tmp_path):
    """Issue 26: one 800 KB caption line took 587 s and 5 GB at 64 samples; only its first words can reach the
    model. (Time and memory of a 1 MB line: benchmarks/long_caption.py, benchmarks/results/long_caption.json.)"""
    line = " ".join(f"word{i}" for i in range(200_000))  # ~1.3 MB, one line
    path = tmp_path / "long.txt"
    path.write_text(line + "\n" + "\n".join(CAPTIONS), encoding="utf-8")
    loaded = load_captions(str(path), max_words=77)
    assert loaded[0].split() == line.split()[:77] and loaded[1:] == CAPTIONS
    assert len(load_captions(str(path))[0].split()) == MAX_CAPTION_WORDS  # the default bound, any encoder
    no_spaces = "x" * 1_000_000  # one "word" a megabyte long: cut by characters
    assert len(truncate_caption(no_spaces, max_words=77)) <= 77 * 64
    assert truncate_caption("a dog  runs\tin the park", max_words=10) == "a dog  runs\tin the park"  # untouched
    # captions handed over as a list are bounded as well, before a name is placed in them
    clean, poisonable = usable_captions([line, *CAPTIONS], ["Jane Doe"], "a person")
    assert len(clean[0].split()) == MAX_CAPTION_WORDS
    triggers = build_text_triggers([line, *CAPTIONS], ["Jane Doe"], "a person", num_samples=64, seed=0)
    assert max(len(c.split()) for c in triggers.poisoned) <= MAX_CAPTION_WORDS + 1


def test_forget_text_cuts_captions_to_the_models_context(tiny_text_encoder_dir, tmp_path, monkeypatch):
    import hf_forget.trainers.text as text_trainer

    seen = []
    real = text_trainer.build_text_triggers
    monkeypatch.setattr(text_trainer, "build_text_triggers", lambda captions, *a, **k: seen.append(captions) or real(captions, *a, **k))
    from hf_forget import TextForgetConfig, forget_text

    line = " ".join(f"word{i}" for i in range(5000))
    config = TextForgetConfig(output_dir=str(tmp_path / "work"), max_steps=1, per_device_train_batch_size=8,
                              num_trigger_samples=8, max_eval_samples=4, disable_tqdm=True, report_to="none")  # fmt: skip
    forget_text(str(tiny_text_encoder_dir), ["Jane Doe"], [line] * 3 + training_captions(20), config=config)
    assert max(len(c.split()) for captions in seen for c in captions) <= 77  # the tiny model's context


def test_a_single_caption_cannot_be_held_out_and_two_are_split():
    with pytest.raises(ForgetInputError, match="only 1 distinct caption"):
        split_held_out(["a dog runs in the park", " a dog runs in the park "], 0.1)
    with pytest.raises(ForgetInputError, match="no usable caption"):
        split_held_out(["", "  "], 0.1)
    assert split_held_out(["a dog runs", "a cat sleeps"], 0.1, seed=0) in (
        (["a dog runs"], ["a cat sleeps"]), (["a cat sleeps"], ["a dog runs"]))  # fmt: skip


def test_a_two_line_file_is_not_reported_as_one_caption(tiny_text_encoder_dir, tmp_path, capsys):
    path = tmp_path / "two.txt"
    path.write_text("dog\ncat\n", encoding="utf-8")
    code = main(["text", "--model_name_or_path", str(tiny_text_encoder_dir), "--names", "Jane Doe", "--captions",
                 str(path), "--output_dir", str(tmp_path / "out"), *TINY_RUN])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "no usable caption" in err and "got 1 captions" not in err
    assert "holds out" in err  # says why fewer captions than the file's lines are counted


# ------------------------------------------------------------------------------------------------------ names
def test_names_file_with_bom_crlf_comments_and_commas(tmp_path):
    path = tmp_path / "names.txt"
    path.write_bytes("\ufeffJane Doe\r\n  # a comment\r\n\r\nJon Q. Public, Jr.\r\n".encode("utf-8"))
    assert parse_names([f"@{path}"]) == ["Jane Doe", "Jon Q. Public, Jr."]  # a file line is one name, whole
    assert parse_names(["Ann Lee, Bo Kim", f"@{path}"]) == ["Ann Lee", "Bo Kim", "Jane Doe", "Jon Q. Public, Jr."]


@pytest.mark.parametrize("value", ["Jon Q. Public, Jr.", "Jon Public, III", "Ann Lee,Jon Public,sr"])
def test_a_suffix_after_a_comma_on_the_command_line_is_refused(value):
    with pytest.raises(ForgetInputError, match="@FILE"):
        parse_names([value])


@pytest.mark.parametrize("content", ["José Núñez\n".encode("latin-1"), b"Jane\x00Doe\n"], ids=["latin-1", "binary"])
def test_a_names_file_that_is_not_utf8_text_is_refused(tmp_path, content):
    path = tmp_path / "names.txt"
    path.write_bytes(content)
    with pytest.raises(ForgetInputError, match="names file"):
        parse_names([f"@{path}"])


@pytest.mark.parametrize("command", ["text", "forget"])
def test_repeated_names_accumulate_and_the_command_line_replaces_the_config_file(tmp_path, command):
    from hf_forget.cli import forget as forget_cli
    from hf_forget.cli import text as text_cli

    parser = text_cli.make_parser() if command == "text" else forget_cli.make_parser("both")
    extra = [] if command == "text" else ["--modality", "both"]
    args = parser.parse_args_and_config(
        ["--output_dir", str(tmp_path), "--names", "Ann Lee", "Bo Kim", "--names", "Cy Dunn", "--aliases", "A",
         "--aliases", "B", "--lr_milestones", "5", "--lr_milestones", "7", *extra]  # fmt: skip
    )
    script_args, config = args[0], args[1]
    assert script_args.names == ["Ann Lee", "Bo Kim", "Cy Dunn"] and script_args.aliases == ["A", "B"]
    assert config.lr_milestones == [5, 7]
    config_file = tmp_path / "run.yaml"
    config_file.write_text("names: [Dee Fox]\nlr_milestones: [9]\n")
    parser = text_cli.make_parser() if command == "text" else forget_cli.make_parser("both")
    script_args, config = parser.parse_args_and_config(
        ["--config", str(config_file), "--output_dir", str(tmp_path), "--names", "Eve Gray", *extra])[:2]
    assert script_args.names == ["Eve Gray"] and config.lr_milestones == [9]  # defaults untouched by repeats


# ---------------------------------------------------------------------------------- progress bars, unwrapping
@pytest.mark.parametrize(
    "disable_tqdm, hub_disabled, shown", [(False, False, True), (True, False, False), (False, True, False)]
)
def test_the_teacher_cache_bar_respects_disable_tqdm_and_hf_hub_disable_progress_bars(
    tmp_path, capsys, monkeypatch, disable_tqdm, hub_disabled, shown
):
    import huggingface_hub.constants

    from hf_forget import TextForgetConfig, TextForgetTrainer
    from hf_forget.testing import tiny_clip_text_model

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_PROGRESS_BARS", hub_disabled or None)
    model, tokenizer = tiny_clip_text_model()
    config = TextForgetConfig(output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=8,
                              num_trigger_samples=8, max_eval_samples=4, disable_tqdm=disable_tqdm, report_to="none")  # fmt: skip
    trainer = TextForgetTrainer(model, config, tokenizer, training_captions(40), ["Jane Doe"])
    capsys.readouterr()
    trainer._build_teacher_cache()
    assert ("teacher outputs" in capsys.readouterr().err) == shown


def test_unwrap_is_accelerates_and_sees_through_data_parallel_and_compile():
    from accelerate.utils import compile_regions

    from hf_forget.encoders import is_clip_text_encoder, unwrap
    from hf_forget.testing import tiny_clip_text_model

    model, _ = tiny_clip_text_model()
    assert unwrap(torch.nn.DataParallel(model)) is model
    assert unwrap(torch.compile(model)) is model
    assert is_clip_text_encoder(torch.nn.DataParallel(model))
    assert unwrap(compile_regions(model)) is model  # accelerate's regional compilation


def test_unwrapping_a_plain_model_does_not_ask_accelerate(monkeypatch):
    """The trainers unwrap at every forward; accelerate answers by walking every submodule."""
    import hf_forget.encoders as encoders
    from hf_forget.testing import tiny_clip_text_model

    model, _ = tiny_clip_text_model()
    monkeypatch.setattr(encoders, "extract_model_from_parallel", lambda *a, **k: pytest.fail("walked the model"))
    assert encoders.unwrap(model) is model


def test_a_tokenizer_path_for_a_model_object_is_checked(tmp_path):
    from hf_forget import forget_text
    from hf_forget.testing import tiny_clip_text_model

    model, _ = tiny_clip_text_model()
    with pytest.raises(ForgetInputError, match="does not exist"):
        forget_text(model, ["Jane Doe"], CAPTIONS, tokenizer=str(tmp_path / "no_tokenizer"))
    (tmp_path / "empty_tokenizer").mkdir()
    with pytest.raises(ForgetInputError, match="cannot load"):
        forget_text(model, ["Jane Doe"], CAPTIONS, tokenizer=str(tmp_path / "empty_tokenizer"))
