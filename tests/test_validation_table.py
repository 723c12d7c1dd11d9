"""Every bad input to `hf-forget text` is answered with exit code 2, one clear line on stderr, no traceback,
and the base model directory left byte-identical. Rows are cheap: each is rejected before any training step."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers
from transformers import BertConfig, BertModel, CLIPTokenizer, PreTrainedTokenizerFast

from hf_forget.cli import EXIT_USAGE, main
from hf_forget.testing import byte_level_clip_tokenizer, tiny_clip_text_model, tiny_clip_vision_model

from conftest import training_captions

TINY_RUN = ["--max_steps", "2", "--per_device_train_batch_size", "8", "--num_trigger_samples", "16",
            "--max_eval_samples", "8", "--disable_tqdm", "true", "--report_to", "none"]  # fmt: skip


def tree_digest(path: Path) -> dict[str, str]:
    """sha256 of every file under ``path`` (relative path -> digest), plus the directory listing itself."""
    digests = {}
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files) + [d + "/" for d in dirs]:
            full = Path(root) / name
            rel = full.relative_to(path).as_posix()
            digests[rel] = hashlib.sha256(full.read_bytes()).hexdigest() if full.is_file() else "dir"
    return digests


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    """A base model and every kind of bad input, built once for the whole table."""
    root = tmp_path_factory.mktemp("bad_inputs")
    model, tokenizer = tiny_clip_text_model()
    model.save_pretrained(root / "base")
    tokenizer.save_pretrained(root / "base")
    (root / "captions.txt").write_text("\n".join(training_captions(200)), encoding="utf-8")

    # not a CLIP text encoder
    BertModel(
        BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    ).save_pretrained(root / "bert")
    tiny_clip_vision_model()[0].save_pretrained(root / "vision")
    # a tokenizer with more ids than the model's embedding table
    big = byte_level_clip_tokenizer()
    big.add_tokens([f"extra{i}" for i in range(40)])
    big.save_pretrained(root / "big_tokenizer")
    # same size, but the special tokens swapped: the model would pool at the wrong token
    swapped = {"<|endoftext|>": 0, "<|startoftext|>": 1}
    for suffix in ("", "</w>"):
        for char in sorted(pre_tokenizers.ByteLevel.alphabet()):
            swapped[char + suffix] = len(swapped)
    CLIPTokenizer(vocab=swapped, merges=[], model_max_length=77).save_pretrained(root / "swapped_tokenizer")
    # an ASCII-only tokenizer: any other script normalizes away, so a CJK name tokenizes to nothing
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1, **{c: i + 2 for i, c in enumerate("abcdefghijklmnopqrstuvwxyz")}}
    ascii_only = Tokenizer(models.WordLevel(vocab, unk_token="<|endoftext|>"))
    ascii_only.normalizer = normalizers.Sequence([normalizers.Lowercase(), normalizers.Replace(Regex("[^a-z ]"), "")])
    ascii_only.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(
        tokenizer_object=ascii_only, bos_token="<|startoftext|>", eos_token="<|endoftext|>",
        pad_token="<|endoftext|>", model_max_length=77,
    ).save_pretrained(root / "ascii_tokenizer")  # fmt: skip

    # caption sources without a usable caption: one-word lines, or lines mentioning the name
    (root / "unusable_captions.txt").write_text("dog\ncat\nJane Doe walks home\nhouse\n", encoding="utf-8")
    (root / "empty_captions.txt").write_text("\n  \n", encoding="utf-8")
    (root / "not_empty").mkdir()
    (root / "not_empty" / "keep.txt").write_text("user data", encoding="utf-8")
    (root / "names_blank.txt").write_text("# only a comment\n\n", encoding="utf-8")
    (root / "caption_dir").mkdir()
    byte_level_clip_tokenizer().save_pretrained(root / "tok_parent" / "tok")  # the model's own tokenizer, elsewhere
    (root / "caption_dir" / "captions.txt").write_text("\n".join(training_captions(50)), encoding="utf-8")
    return root


# (id, argv with {placeholders}, fragment of the expected message)
ROWS = [
    ("no-names", ["--captions", "{captions}"], "no names to forget"),
    ("no-names-in-file", ["--names", "@{names_blank}", "--captions", "{captions}"], "no names to forget"),
    ("missing-names-file", ["--names", "@{root}/nope.txt", "--captions", "{captions}"], "names file"),
    ("empty-name", ["--names", "Jane Doe,,John Roe", "--captions", "{captions}"], "name #2 is empty"),
    ("blank-name", ["--names", "Jane Doe,   ", "--captions", "{captions}"], "name #2 is empty"),
    ("duplicate-case", ["--names", "Jane Doe,JANE   doe", "--captions", "{captions}"], "#1 and #2 are the same"),
    ("duplicate-unicode", ["--names", "José Núñez,JOSE\u0301 NU\u0301N\u0303EZ", "--captions", "{captions}"],
     "#1 and #2 are the same"),  # fmt: skip
    ("duplicate-fullwidth", ["--names", "Ann Lee,Ａｎｎ Ｌｅｅ", "--captions", "{captions}"], "#1 and #2 are the same"),
    ("name-is-neutral-term", ["--names", "Jane Doe,A  Person", "--captions", "{captions}"], "neutral term"),
    ("name-is-custom-neutral", ["--names", "somebody", "--neutral_term", "Somebody", "--captions", "{captions}"],
     "neutral term"),  # fmt: skip
    ("control-chars-name", ["--names", "Jane Doe,\x01\x02", "--captions", "{captions}"], "no letters or digits"),
    ("zero-width-name", ["--names", "\u200b\u200d", "--captions", "{captions}"], "no letters or digits"),
    ("name-tokenizes-to-nothing", ["--names", "山田 太郎", "--tokenizer_name_or_path", "{ascii_tokenizer}",
                                   "--captions", "{captions}"], "tokenizes to nothing"),  # fmt: skip
    ("name-exceeds-context", ["--names", "Jane " + "Doe-" * 20, "--captions", "{captions}"], "tokens long"),
    ("tokenizer-larger-than-model", ["--names", "Jane Doe", "--tokenizer_name_or_path", "{big_tokenizer}",
                                     "--captions", "{captions}"], "the tokenizer has"),  # fmt: skip
    ("tokenizer-with-other-eos", ["--names", "Jane Doe", "--tokenizer_name_or_path", "{swapped_tokenizer}",
                                  "--captions", "{captions}"], "pools at token"),  # fmt: skip
    ("not-a-text-encoder", ["--names", "Jane Doe", "--captions", "{captions}", "--model_name_or_path",
                            "{vision}"], "text encoder"),  # fmt: skip
    ("not-clip", ["--names", "Jane Doe", "--captions", "{captions}", "--model_name_or_path", "{bert}"],
     "not a CLIP text encoder"),  # fmt: skip
    ("missing-model", ["--names", "Jane Doe", "--captions", "{captions}", "--model_name_or_path", "{root}/nowhere"],
     "does not exist"),  # fmt: skip
    ("model-dir-without-config", ["--names", "Jane Doe", "--captions", "{captions}", "--model_name_or_path",
                                  "{not_empty}"], "no config.json"),  # fmt: skip
    ("no-caption-source", ["--names", "Jane Doe"], "--captions"),
    ("no-usable-caption", ["--names", "Jane Doe", "--captions", "{unusable_captions}"], "no usable caption"),
    ("empty-caption-file", ["--names", "Jane Doe", "--captions", "{empty_captions}"], "no usable caption"),
    ("missing-caption-file", ["--names", "Jane Doe", "--captions", "{root}/missing_captions.txt"],
     "cannot read captions"),  # fmt: skip
    ("output-is-input", ["--names", "Jane Doe", "--captions", "{captions}", "--output_dir", "{base}"], "overlaps"),
    ("output-inside-input", ["--names", "Jane Doe", "--captions", "{captions}", "--output_dir", "{base}/defended"],
     "overlaps"),  # fmt: skip
    ("output-is-input-trailing-slash", ["--names", "Jane Doe", "--captions", "{captions}", "--output_dir",
                                        "{base}/./"], "overlaps"),  # fmt: skip
    ("output-not-empty", ["--names", "Jane Doe", "--captions", "{captions}", "--output_dir", "{not_empty}"],
     "not empty"),  # fmt: skip
    ("output-is-a-file", ["--names", "Jane Doe", "--captions", "{captions}", "--output_dir", "{names_blank}"],
     "is a file"),  # fmt: skip
    ("output-is-the-caption-file", ["--names", "Jane Doe", "--captions", "{captions}", "--output_dir", "{captions}"],
     "overlaps"),  # fmt: skip
    ("output-holds-the-captions-overwrite", ["--names", "Jane Doe", "--captions", "{caption_dir}/captions.txt",
                                             "--output_dir", "{caption_dir}", "--overwrite_output_dir", "true"],
     "overlaps"),  # with --overwrite_output_dir this would have deleted the captions  # fmt: skip
    ("output-holds-the-tokenizer-overwrite", ["--names", "Jane Doe", "--tokenizer_name_or_path", "{tok_parent}/tok",
                                              "--captions", "{captions}", "--output_dir", "{tok_parent}",
                                              "--overwrite_output_dir", "true"], "overlaps"),  # fmt: skip
    ("no-output-dir", ["--names", "Jane Doe", "--captions", "{captions}", "--output_dir", None], "--output_dir"),
    ("resume-from-missing-checkpoint", ["--names", "Jane Doe", "--captions", "{captions}",
                                        "--resume_from_checkpoint", "{root}/checkpoint-99"], "does not exist"),  # fmt: skip
]


def build_argv(template: list, world: dict | Path, output_dir: Path) -> list[str]:
    places = {p.stem if p.is_file() else p.name: p for p in Path(world).iterdir()}
    values = {k: str(v) for k, v in places.items()} | {"root": str(world)}
    argv = ["text"]
    if "--model_name_or_path" not in template:
        argv += ["--model_name_or_path", values["base"]]
    if "--output_dir" not in template:
        argv += ["--output_dir", str(output_dir)]
    for index, arg in enumerate(template):
        if arg is None:  # drop the flag before a None
            argv.pop()
            continue
        argv.append(arg.format(**values) if "{" in arg else arg)
    return argv + TINY_RUN


def assert_usage_error(code: int, err: str, fragment: str) -> None:
    assert code == EXIT_USAGE, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert 1 <= len(lines) <= 3, err
    error_lines = [line for line in lines if line.startswith("hf-forget: error: ")]
    assert len(error_lines) == 1 and fragment in error_lines[0], err


def test_table_covers_the_inputs_the_issues_name():
    ids = {row[0] for row in ROWS}
    for required in ("no-names", "empty-name", "duplicate-case", "duplicate-unicode", "name-is-neutral-term",
                     "not-clip", "missing-model", "no-usable-caption", "missing-caption-file", "output-is-input",
                     "output-inside-input", "output-not-empty", "name-exceeds-context", "name-tokenizes-to-nothing",
                     "tokenizer-larger-than-model", "tokenizer-with-other-eos"):  # fmt: skip
        assert required in ids


@pytest.mark.parametrize("row_id, template, fragment", ROWS, ids=[row[0] for row in ROWS])
def test_bad_input_exits_2_and_leaves_inputs_untouched(world, tmp_path, capsys, row_id, template, fragment):
    before = tree_digest(world)
    output_dir = tmp_path / "defended"
    code = main(build_argv(template, world, output_dir))
    err = capsys.readouterr().err
    assert_usage_error(code, err, fragment)
    assert tree_digest(world) == before  # base model, tokenizers, captions and the non-empty dir untouched
    assert not output_dir.exists()
    assert not (tmp_path / ".defended.incomplete").exists()
    assert not any(p.name.endswith(".incomplete") for p in world.iterdir())


@pytest.mark.slow  # ~7 s of CPU each, mostly interpreter start-up; over 30 s on a loaded 2-core machine
@pytest.mark.parametrize("row_id", ["duplicate-unicode", "tokenizer-larger-than-model"])
def test_bad_input_in_a_real_process_prints_one_line(world, tmp_path, row_id):
    """The console script itself: exit 2 and no traceback, also after the model was loaded."""
    template, fragment = next((t, f) for i, t, f in ROWS if i == row_id)
    before = tree_digest(world)
    output_dir = tmp_path / "defended"
    argv = build_argv(template, world, output_dir)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "hf_forget.cli", *argv], capture_output=True, text=True, env=env, timeout=300
    )
    assert_usage_error(proc.returncode, proc.stderr, fragment)
    assert proc.stdout == ""
    assert tree_digest(world) == before
    assert not output_dir.exists()


# ----------------------------------------------------------------------------------------- hf-forget vision
VISION_RUN = ["--max_steps", "2", "--per_device_train_batch_size", "8", "--num_trigger_samples", "16",
              "--disable_tqdm", "true", "--report_to", "none", "--use_cpu"]  # fmt: skip


@pytest.fixture
def face_world(tmp_path) -> Path:
    """A tiny CLIP vision encoder, face folders, clean images and broken variants (built per row: some rows
    would destroy inputs if the validation failed)."""
    from test_vision_trainer import synthetic_clean_images, synthetic_faces

    root = tmp_path / "faces_world"
    for folder, persons, n in (("faces", (0, 1), 4), ("reference", range(2, 6), 2)):
        for person in persons:
            (root / folder / f"p{person}").mkdir(parents=True)
            for i, image in enumerate(synthetic_faces(person, n)):
                image.save(root / folder / f"p{person}" / f"{i}.png")
    (root / "clean").mkdir()
    for i, image in enumerate(synthetic_clean_images(8)):
        image.save(root / "clean" / f"{i}.jpg")
    model, processor = tiny_clip_vision_model()
    model.save_pretrained(root / "vision")
    processor.save_pretrained(root / "vision")
    model.save_pretrained(root / "vision_without_processor")
    text_model, _ = tiny_clip_text_model()
    text_model.save_pretrained(root / "text_model")
    (root / "flat_faces").mkdir()
    synthetic_faces(0, 1)[0].save(root / "flat_faces" / "0.png")
    (root / "no_images" / "p0").mkdir(parents=True)
    (root / "no_images" / "p0" / "notes.txt").write_text("not an image", encoding="utf-8")
    (root / "empty_clean").mkdir()
    return root


# (id, {flag: value with {placeholders} or None to drop the flag}, fragment of the expected message)
VISION_ROWS = [
    ("missing-face-folder", {"faces": "{root}/nowhere"}, "does not exist"),
    ("face-folder-without-persons", {"faces": "{root}/flat_faces"}, "no person subfolder"),
    ("person-without-images", {"faces": "{root}/no_images"}, "0 readable images"),
    ("missing-clean-images", {"clean_images": "{root}/nowhere"}, "does not exist"),
    ("no-clean-image", {"clean_images": "{root}/empty_clean"}, "0 readable images"),
    ("missing-reference-faces", {"reference_faces": "{root}/nowhere"}, "does not exist"),
    ("missing-target-embedding", {"reference_faces": None, "target_embedding": "{root}/target.safetensors"},
     "target embedding"),  # fmt: skip
    ("not-clip-vision", {"model_name_or_path": "{root}/text_model"}, "not a CLIP vision encoder"),
    ("missing-model", {"model_name_or_path": "./{root}/nowhere"}, "does not exist"),
    ("model-without-processor", {"model_name_or_path": "{root}/vision_without_processor"}, "no image processor"),
    ("output-is-model", {"output_dir": "{root}/vision"}, "overlaps"),
    ("output-inside-model", {"output_dir": "{root}/vision/defended"}, "overlaps"),
    ("output-not-empty", {"output_dir": "{root}/no_images"}, "not empty"),
    ("output-is-clean-images", {"output_dir": "{root}/clean", "overwrite_output_dir": "true"}, "overlaps"),
    # with --overwrite_output_dir these would have deleted or written into the user's face folder
    ("output-is-face-folder-overwrite", {"output_dir": "{root}/faces", "overwrite_output_dir": "true"}, "overlaps"),
    ("output-inside-face-folder", {"output_dir": "{root}/faces/p0/defended"}, "overlaps"),
    ("resume-from-missing-checkpoint", {"resume_from_checkpoint": "{root}/checkpoint-9"}, "does not exist"),
]


@pytest.mark.parametrize("row_id, changes, fragment", VISION_ROWS, ids=[row[0] for row in VISION_ROWS])
def test_bad_vision_input_exits_2_and_leaves_inputs_untouched(face_world, tmp_path, capsys, row_id, changes, fragment):
    options = {
        "model_name_or_path": "{root}/vision", "faces": "{root}/faces", "clean_images": "{root}/clean",
        "reference_faces": "{root}/reference", "output_dir": str(tmp_path / "defended"),
    }  # fmt: skip
    options.update(changes)
    argv = ["vision"]
    for flag, value in options.items():
        if value is not None:
            argv += [f"--{flag}", value.format(root=face_world)]
    before = tree_digest(face_world)
    code = main(argv + VISION_RUN)
    assert_usage_error(code, capsys.readouterr().err, fragment)
    assert tree_digest(face_world) == before
    assert not (tmp_path / "defended").exists()
