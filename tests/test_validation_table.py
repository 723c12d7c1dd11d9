"""The issue-25 table: every bad input to every command (text, vision, forget, audit, push, demo) is answered
with exit code 2, one line on stderr without a traceback, no output folder left, and every input byte-identical
(sha256 of each file before and after). Rows that are valid settings are accepted and tested as such.

Rows are cheap: each is refused before any training step, in-process through ``hf_forget.cli.main``, on tiny
models built from configs. A row is ``(id, argv template with {placeholders}, fragment of the message)``.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers
from transformers import BertConfig, BertModel, CLIPTokenizer, PreTrainedTokenizerFast

import hf_forget
from hf_forget.cli import EXIT_USAGE, main
from hf_forget.testing import (
    byte_level_clip_tokenizer,
    tiny_clip_image_processor,
    tiny_clip_model,
    tiny_clip_text_model,
    tiny_clip_vision_model,
)

from conftest import training_captions

PACKAGE = Path(hf_forget.__file__).parent
NOT_WRITABLE = "/proc/hf-forget-table/out"  # /proc takes no new folder, not even from root
CUDA = torch.cuda.is_available()


def _missing_integration() -> str | None:
    """A --report_to integration transformers knows that is not installed here (None if all are)."""
    from transformers.integrations.integration_utils import (
        INTEGRATION_TO_CALLBACK,
        get_available_reporting_integrations,
    )

    available = set(get_available_reporting_integrations())
    return next((name for name in ("wandb", "mlflow", "comet_ml", "neptune", "clearml", "swanlab")
                 if name in INTEGRATION_TO_CALLBACK and name not in available), None)  # fmt: skip


MISSING_INTEGRATION = _missing_integration()

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
    write_bad_text_inputs(root)
    write_broken_models(root / "base", root)
    return root


def write_bad_text_inputs(root: Path) -> None:
    """Names and caption files in every encoding and format a user may hand over, good and bad."""
    captions = training_captions(200)
    # names files
    (root / "latin1_names.txt").write_bytes("José Núñez\n".encode("latin-1"))
    (root / "nul_names.txt").write_bytes(b"Jane\x00Doe\n")
    (root / "bom_names.txt").write_bytes("\ufeffJane Doe\r\nJohn Roe\r\n".encode("utf-8"))
    (root / "only_bom_names.txt").write_bytes("\ufeff\r\n".encode("utf-8"))
    (root / "comma_names.txt").write_text("Jon Q. Public, Jr.\n", encoding="utf-8")
    # caption files that cannot be read as captions
    (root / "latin1_captions.txt").write_bytes("\n".join(c + " café" for c in captions).encode("latin-1"))
    (root / "binary_captions.bin").write_bytes(bytes(range(256)) * 8)
    (root / "utf16_captions.txt").write_bytes("\n".join(captions).encode("utf-16"))
    (root / "nul_captions.txt").write_bytes(("\n".join(captions) + "\nnul\x00byte here").encode("utf-8"))
    with gzip.open(root / "latin1_captions.txt.gz", "wb") as handle:
        handle.write("\n".join(c + " café" for c in captions).encode("latin-1"))
    (root / "single_caption.txt").write_text("a small dog runs in the park\n", encoding="utf-8")
    (root / "two_words.txt").write_text("dog\ncat\n", encoding="utf-8")
    (root / "nocol_csv.csv").write_text("caption,id\n" + "\n".join(f"{c},{i}" for i, c in enumerate(captions)))
    (root / "nocol_tsv.tsv").write_text("caption\tid\n" + "\n".join(f"{c}\t{i}" for i, c in enumerate(captions)))
    (root / "nocol_jsonl.jsonl").write_text("\n".join(json.dumps({"caption": c}) for c in captions))
    (root / "bad_jsonl.jsonl").write_text("{not json\n{neither\n")
    (root / "garbage_parquet.parquet").write_bytes(b"PAR1" + bytes(range(200)))
    (root / "empty_folder").mkdir()
    import datasets

    datasets.Dataset.from_dict({"caption": captions[:20]}).save_to_disk(root / "saved_caption_column")
    datasets.DatasetDict({"validation": datasets.Dataset.from_dict({"text": captions[:20]})}).save_to_disk(
        root / "saved_validation_split"
    )
    # caption files in every supported format (valid)
    (root / "ok_csv.csv").write_text("text,id\n" + "\n".join(f"{c},{i}" for i, c in enumerate(captions)))
    (root / "ok_tsv.tsv").write_text("text\tid\n" + "\n".join(f"{c}\t{i}" for i, c in enumerate(captions)))
    (root / "ok_jsonl.jsonl").write_text("\n".join(json.dumps({"text": c}) for c in captions))
    (root / "ok_json.json").write_text(json.dumps([{"text": c} for c in captions]))
    with gzip.open(root / "ok_gz.txt.gz", "wt", encoding="utf-8") as handle:
        handle.write("\n".join(captions))
    # config files
    (root / "bad_yaml.yaml").write_text("max_steps: [1, 2\n")
    (root / "unknown_key.yaml").write_text("no_such_option: 1\n")
    (root / "list_yaml.yaml").write_text("- max_steps\n")
    (root / "link_target").mkdir()
    (root / "link_out").symlink_to(root / "link_target")
    (root / "names_dir").mkdir()
    (root / "names_dir" / "names.txt").write_text("Jane Doe\n", encoding="utf-8")


def write_broken_models(model_dir: Path, root: Path) -> None:
    """Copies of the model at ``model_dir``, each broken in one way (``root/<kind>``)."""
    import shutil

    def variant(name: str, change) -> None:
        shutil.copytree(model_dir, root / name)
        change(root / name)

    def edit_config(**changes):
        def change(folder: Path) -> None:
            config = json.loads((folder / "config.json").read_text())
            config.update(changes)
            for tower in ("text_config", "vision_config"):  # a CLIPModel's sizes live in its towers' configs
                if isinstance(config.get(tower), dict):
                    config[tower].update({k: v for k, v in changes.items() if k != "architectures"})
            (folder / "config.json").write_text(json.dumps(config))

        return change

    def truncate(folder: Path) -> None:
        data = (folder / "model.safetensors").read_bytes()
        (folder / "model.safetensors").write_bytes(data[: len(data) // 2])

    hidden = json.loads((model_dir / "config.json").read_text()).get("hidden_size", 32)
    variant("cfg_notjson", lambda f: (f / "config.json").write_text("{not json"))
    variant("cfg_list", lambda f: (f / "config.json").write_text("[1, 2]"))
    variant("cfg_architectures", edit_config(architectures=5))
    variant("st_random", lambda f: (f / "model.safetensors").write_bytes(bytes(range(256)) * 20))
    variant("st_truncated", truncate)
    variant("no_weights", lambda f: (f / "model.safetensors").unlink())
    variant("bad_heads", edit_config(num_attention_heads=5))
    variant("hidden_not_int", edit_config(hidden_size="big"))
    variant("shape_mismatch", edit_config(hidden_size=hidden * 2))
    if (model_dir / "tokenizer.json").exists():
        variant("no_tokenizer", lambda f: [p.unlink() for p in f.iterdir() if p.name.startswith(("tokenizer", "vocab", "merges", "special"))])
        variant("tokenizer_corrupt", lambda f: (f / "tokenizer.json").write_text("{garbage"))
        variant("tokenizer_config_corrupt", lambda f: (f / "tokenizer_config.json").write_text("{garbage"))
    if (model_dir / "preprocessor_config.json").exists():
        variant("processor_corrupt", lambda f: (f / "preprocessor_config.json").write_text("{garbage"))


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


C = ["--names", "Jane Doe", "--captions", "{captions}"]  # a row's usual names and captions
ROWS += [
    # names: encodings, byte-order marks, repeated flags, commas
    ("latin1-names-file", ["--names", "@{latin1_names}", "--captions", "{captions}"], "not UTF-8"),
    ("binary-names-file", ["--names", "@{nul_names}", "--captions", "{captions}"], "not a text file"),
    ("names-file-only-bom", ["--names", "@{only_bom_names}", "--captions", "{captions}"], "no names to forget"),
    ("bom-names-file-and-its-twin", ["--names", "@{bom_names}", "--names", "Jane Doe", "--captions", "{captions}"],
     "#1 and #3 are the same"),  # the BOM does not make "Jane Doe" a second name  # fmt: skip
    ("repeated-names-accumulate", ["--names", "Jane Doe", "--names", "JANE DOE", "--captions", "{captions}"],
     "#1 and #2 are the same"),  # the second --names is kept, not dropped  # fmt: skip
    ("names-comma-suffix", ["--names", "Jon Q. Public, Jr.", "--captions", "{captions}"], "only a suffix"),
    ("names-comma-roman-suffix", ["--names", "Jon Public, III", "--captions", "{captions}"], "only a suffix"),
    ("aliases-comma-suffix", [*C, "--aliases", "Jon Public, Sr."], "only a suffix"),
    ("aliases-latin1-file", [*C, "--aliases", "@{latin1_names}"], "not UTF-8"),
    ("aliases-missing-file", [*C, "--aliases", "@{root}/no_aliases.txt"], "names file"),
    # caption files: encodings, formats, columns, splits, too few
    ("latin1-captions", ["--names", "Jane Doe", "--captions", "{latin1_captions}"], "not UTF-8"),
    ("binary-captions", ["--names", "Jane Doe", "--captions", "{binary_captions}"], "not UTF-8"),
    ("utf16-captions", ["--names", "Jane Doe", "--captions", "{utf16_captions}"], "not UTF-8"),
    ("nul-byte-captions", ["--names", "Jane Doe", "--captions", "{nul_captions}"], "NUL bytes"),
    ("latin1-captions-gz", ["--names", "Jane Doe", "--captions", "{root}/latin1_captions.txt.gz"], "not UTF-8"),
    ("latin1-trigger-captions", [*C, "--trigger_captions", "{latin1_captions}"], "not UTF-8"),
    ("single-caption", ["--names", "Jane Doe", "--captions", "{single_caption}"], "only 1 distinct caption"),
    ("two-one-word-captions", ["--names", "Jane Doe", "--captions", "{two_words}"], "no usable caption"),
    ("csv-without-caption-column", ["--names", "Jane Doe", "--captions", "{nocol_csv}"], "no column 'text'"),
    ("tsv-without-caption-column", ["--names", "Jane Doe", "--captions", "{nocol_tsv}"], "no column 'text'"),
    ("jsonl-without-caption-column", ["--names", "Jane Doe", "--captions", "{nocol_jsonl}"], "no column 'text'"),
    ("csv-other-caption-column", ["--names", "Jane Doe", "--captions", "{ok_csv}", "--caption_column", "caption"],
     "no column 'caption'"),  # fmt: skip
    ("jsonl-malformed", ["--names", "Jane Doe", "--captions", "{bad_jsonl}"], "cannot read captions"),
    ("parquet-garbage", ["--names", "Jane Doe", "--captions", "{garbage_parquet}"], "cannot read captions"),
    ("saved-dataset-other-column", ["--names", "Jane Doe", "--captions", "{saved_caption_column}"], "no column"),
    ("saved-dataset-other-split", ["--names", "Jane Doe", "--captions", "{saved_validation_split}"], "no split"),
    ("captions-dataset-name-offline", ["--names", "Jane Doe", "--captions", "example-org/no-such-captions"],
     "cannot read captions"),  # fmt: skip
    ("captions-empty-folder", ["--names", "Jane Doe", "--captions", "{empty_folder}"], "cannot read captions"),
    # broken models
    ("config-not-json", [*C, "--model_name_or_path", "{cfg_notjson}"], "not a readable JSON file"),
    ("config-a-json-list", [*C, "--model_name_or_path", "{cfg_list}"], "holds a JSON list"),
    ("config-architectures-not-a-list", [*C, "--model_name_or_path", "{cfg_architectures}"], "'architectures'"),
    ("weights-random-bytes", [*C, "--model_name_or_path", "{st_random}"], "cannot load"),
    ("weights-truncated", [*C, "--model_name_or_path", "{st_truncated}"], "cannot load"),
    ("weights-missing", [*C, "--model_name_or_path", "{no_weights}"], "cannot load"),
    ("hidden-size-not-multiple-of-heads", [*C, "--model_name_or_path", "{bad_heads}"], "multiple of the number"),
    ("hidden-size-not-a-number", [*C, "--model_name_or_path", "{hidden_not_int}"], "hidden_size"),
    ("weights-other-shapes-than-config", [*C, "--model_name_or_path", "{shape_mismatch}"], "shapes do not match"),
    ("tokenizer-missing", [*C, "--model_name_or_path", "{no_tokenizer}"], "cannot load"),
    ("tokenizer-json-corrupt", [*C, "--model_name_or_path", "{tokenizer_corrupt}"], "cannot load"),
    ("tokenizer-config-corrupt", [*C, "--model_name_or_path", "{tokenizer_config_corrupt}"], "cannot load"),
    ("tokenizer-path-missing", [*C, "--tokenizer_name_or_path", "{root}/no_tokenizer_here"], "does not exist"),
    # arguments
    ("unknown-flag", [*C, "--foo", "1"], "unrecognized arguments: --foo"),
    ("device-is-no-option", [*C, "--device", "cuda"], "unrecognized arguments: --device"),
    ("criterion-steps-is-no-option", [*C, "--stop_at_criterion", "true", "--criterion_steps", "0"],
     "unrecognized arguments: --criterion_steps"),  # fmt: skip
    pytest.param("bf16-on-cpu", [*C, "--bf16", "true"], "need a CUDA GPU",
                 marks=pytest.mark.skipif(CUDA, reason="valid on a GPU")),  # fmt: skip
    pytest.param("fp16-on-cpu", [*C, "--fp16", "true"], "need a CUDA GPU",
                 marks=pytest.mark.skipif(CUDA, reason="valid on a GPU")),  # fmt: skip
    ("fp16-with-use-cpu", [*C, "--fp16", "true", "--use_cpu", "true"], "need a CUDA GPU"),
    ("learning-rate-negative", [*C, "--learning_rate", "-1"], "learning_rate must be"),
    ("learning-rate-nan", [*C, "--learning_rate", "nan"], "learning_rate must be"),
    ("learning-rate-inf", [*C, "--learning_rate", "inf"], "learning_rate must be"),
    ("learning-rate-zero", [*C, "--learning_rate", "0"], "learning_rate must be"),
    ("learning-rate-not-a-number", [*C, "--learning_rate", "abc"], "invalid float value"),
    ("batch-size-zero", [*C, "--per_device_train_batch_size", "0"], "per_device_train_batch_size must"),
    ("eval-batch-size-zero", [*C, "--per_device_eval_batch_size", "0"], "per_device_eval_batch_size must"),
    ("gradient-accumulation-zero", [*C, "--gradient_accumulation_steps", "0"], "gradient_accumulation_steps must"),
    ("seed-negative", [*C, "--seed", "-1"], "seed must be"),
    ("logging-steps-zero", [*C, "--logging_steps", "0"], "logging_steps must"),
    ("max-eval-samples-zero", [*C, "--max_eval_samples", "0"], "max_eval_samples must"),
    ("num-trigger-samples-zero", [*C, "--num_trigger_samples", "0"], "num_trigger_samples must"),
    ("max-steps-zero", [*C, "--max_steps", "0"], "max_steps must"),
    ("max-steps-negative", [*C, "--max_steps", "-5"], "max_steps must"),
    ("max-steps-fraction", [*C, "--max_steps", "1.5"], "invalid int value"),
    ("no-steps-no-epochs", [*C, "--max_steps", "-1", "--num_train_epochs", "-1"], "num_train_epochs must"),
    ("epochs-nan", [*C, "--max_steps", "-1", "--num_train_epochs", "nan"], "num_train_epochs must"),
    ("save-steps-zero", [*C, "--save_strategy", "steps", "--save_steps", "0"], "save_steps must"),
    ("save-total-limit-zero", [*C, "--save_strategy", "steps", "--save_total_limit", "0"], "save_total_limit"),
    ("save-strategy-unknown", [*C, "--save_strategy", "often"], "invalid choice"),
    ("eval-steps-zero", [*C, "--eval_strategy", "steps", "--eval_steps", "0"], "eval_steps must"),
    ("criterion-eval-steps-negative", [*C, "--stop_at_criterion", "true", "--eval_steps", "-1"], "eval_steps must"),
    ("lr-gamma-nan", [*C, "--lr_gamma", "nan"], "lr_gamma must"),
    ("lr-gamma-zero", [*C, "--lr_gamma", "0"], "lr_gamma must"),
    ("lr-milestones-negative", [*C, "--lr_milestones", "-3"], "lr_milestones must"),
    ("lr-scheduler-unknown", [*C, "--lr_scheduler_type", "sometimes"], "SchedulerType"),
    ("lr-scheduler-kwargs-not-json", [*C, "--lr_scheduler_type", "cosine", "--lr_scheduler_kwargs", "{{bad"],
     "invalid Trainer setting"),  # fmt: skip
    ("warmup-steps-negative", [*C, "--warmup_steps", "-1"], "warmup_steps must"),
    ("max-grad-norm-nan", [*C, "--max_grad_norm", "nan"], "max_grad_norm must"),
    ("alpha-nan", [*C, "--alpha", "nan"], "alpha must"),
    ("alpha-negative", [*C, "--alpha", "-0.5"], "alpha must"),
    ("beta-inf", [*C, "--beta", "inf"], "beta must"),
    ("identity-residual-weight-nan", [*C, "--identity_residual_weight", "nan"], "identity_residual_weight must"),
    ("weight-decay-nan", [*C, "--weight_decay", "nan"], "weight_decay must"),
    ("weight-decay-negative", [*C, "--weight_decay", "-1"], "weight_decay must"),
    ("min-sim-backdoor-nan", [*C, "--min_sim_backdoor", "nan"], "min_sim_backdoor must"),
    ("min-sim-clean-inf", [*C, "--min_sim_clean", "inf"], "min_sim_clean must"),
    ("dataloader-workers-negative", [*C, "--dataloader_num_workers", "-1"], "dataloader_num_workers must"),
    ("lora-rank-negative", [*C, "--lora_r", "-1"], "lora_r must"),
    ("lora-alpha-zero", [*C, "--lora_r", "4", "--lora_alpha", "0"], "lora_alpha must"),
    ("token-embedding-lr-negative", [*C, "--token_embedding_learning_rate", "-1"], "token_embedding_learning_rate"),
    ("token-embedding-lr-with-lora", [*C, "--token_embedding_learning_rate", "1e-3", "--lora_r", "4"],
     "LoRA leaves the token embeddings"),  # fmt: skip
    ("eval-fraction-zero", [*C, "--eval_fraction", "0"], "eval_fraction must"),
    ("eval-fraction-one", [*C, "--eval_fraction", "1"], "eval_fraction must"),
    ("eval-fraction-nan", [*C, "--eval_fraction", "nan"], "eval_fraction must"),
    ("short-trigger-fraction-above-one", [*C, "--short_trigger_fraction", "2"], "short_trigger_fraction must"),
    ("neighbour-fraction-zero", [*C, "--preserve_neighbours", "2", "--neighbour_fraction", "0"],
     "neighbour_fraction must"),  # fmt: skip
    ("preserve-neighbours-negative", [*C, "--preserve_neighbours", "-2"], "preserve_neighbours must"),
    ("embedding-unknown", [*C, "--embedding", "tokens"], "invalid choice"),
    ("pooling-unknown", [*C, "--pooling", "max"], "invalid choice"),
    ("optimizer-unknown", [*C, "--optim", "magic"], "invalid choice"),
    ("neutral-term-empty", [*C, "--neutral_term", ""], "neutral_term must not be empty"),
    ("neutral-term-blank", [*C, "--neutral_term", "   "], "neutral_term must not be empty"),
    ("report-to-unknown", [*C, "--report_to", "carrier-pigeon"], "not an integration"),
    pytest.param("report-to-not-installed", [*C, "--report_to", str(MISSING_INTEGRATION)], "is not installed",
                 marks=pytest.mark.skipif(MISSING_INTEGRATION is None, reason="every integration installed")),  # fmt: skip
    ("push-to-hub-without-repo", [*C, "--push_to_hub", "true"], "needs --hub_model_id"),
    ("config-file-missing", [*C, "--config", "{root}/no_config.yaml"], "does not exist"),
    ("config-file-invalid-yaml", [*C, "--config", "{bad_yaml}"], "not valid YAML"),
    ("config-file-unknown-key", [*C, "--config", "{unknown_key}"], "unknown key"),
    ("config-file-not-a-mapping", [*C, "--config", "{list_yaml}"], "must hold a mapping"),
    # where the output goes
    ("output-parent-not-writable", [*C, "--output_dir", "{not_writable}"], "not a writable folder"),
    ("output-under-a-file", [*C, "--output_dir", "{captions}/defended"], "not a writable folder"),
    ("output-inside-the-package", [*C, "--output_dir", "{package}/defended"], "inside the hf-forget package"),
    ("output-is-a-symlink", [*C, "--output_dir", "{link_out}"], "symbolic link"),
    # a names file is an input too: --overwrite_output_dir would have deleted it
    ("output-holds-the-names-file-overwrite", ["--names", "@{names_dir}/names.txt", "--captions", "{captions}",
                                               "--output_dir", "{names_dir}", "--overwrite_output_dir", "true"],
     "overlaps the input"),  # fmt: skip
    ("output-holds-the-aliases-file-overwrite", [*C, "--aliases", "@{names_dir}/names.txt", "--output_dir",
                                                 "{names_dir}", "--overwrite_output_dir", "true"], "overlaps the input"),  # fmt: skip
    ("output-inside-the-names-file", ["--names", "@{names_dir}/names.txt", "--captions", "{captions}",
                                      "--output_dir", "{names_dir}/names.txt/out"], "not a writable folder"),  # fmt: skip
]


def unless_given(run: list[str], template: list) -> list[str]:
    """The ``--flag value`` pairs of ``run`` whose flag the row does not set itself."""
    given = {arg.split("=", 1)[0] for arg in template if isinstance(arg, str) and arg.startswith("--")}
    return [item for flag, value in zip(run[::2], run[1::2]) if flag not in given for item in (flag, value)]


def placeholders(root: Path) -> dict[str, str]:
    places = {p.stem if p.is_file() else p.name: p for p in Path(root).iterdir()}
    return {k: str(v) for k, v in places.items()} | {"root": str(root), "package": str(PACKAGE),
                                                     "not_writable": NOT_WRITABLE}  # fmt: skip


def build_argv(template: list, world: dict | Path, output_dir: Path) -> list[str]:
    values = placeholders(Path(world))
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
    return argv + unless_given(TINY_RUN, template)


def assert_usage_error(code: int, err: str, fragment: str) -> None:
    assert code == EXIT_USAGE, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert 1 <= len(lines) <= 3, err
    error_lines = [line for line in lines if line.startswith("hf-forget: error: ")]
    assert len(error_lines) == 1 and fragment in error_lines[0], err


def row_id(row) -> str:
    return row.values[0] if hasattr(row, "values") else row[0]


def ids_of(rows) -> list[str]:
    ids = [row_id(row) for row in rows]
    assert len(ids) == len(set(ids)), "row ids must be unique"
    return ids


def test_table_covers_the_inputs_the_issues_name():
    ids = {row_id(row) for row in ROWS}
    for required in ("no-names", "empty-name", "duplicate-case", "duplicate-unicode", "name-is-neutral-term",
                     "not-clip", "missing-model", "no-usable-caption", "missing-caption-file", "output-is-input",
                     "output-inside-input", "output-not-empty", "name-exceeds-context", "name-tokenizes-to-nothing",
                     "tokenizer-larger-than-model", "tokenizer-with-other-eos"):  # fmt: skip
        assert required in ids


@pytest.mark.parametrize("name, template, fragment", ROWS, ids=ids_of(ROWS))
def test_bad_input_exits_2_and_leaves_inputs_untouched(world, tmp_path, capsys, name, template, fragment):
    before = tree_digest(world)
    output_dir = tmp_path / "defended"
    code = main(build_argv(template, world, output_dir))
    err = capsys.readouterr().err
    assert_usage_error(code, err, fragment)
    assert tree_digest(world) == before  # base model, tokenizers, captions and the non-empty dir untouched
    assert not output_dir.exists()
    assert not (tmp_path / ".defended.incomplete").exists()
    assert not any(p.name.endswith(".incomplete") for p in world.iterdir())
    assert not (PACKAGE / "defended").exists()


@pytest.mark.slow  # ~7 s of CPU each, mostly interpreter start-up; over 30 s on a loaded 2-core machine
@pytest.mark.parametrize("row_id", ["duplicate-unicode", "tokenizer-larger-than-model"])
def test_bad_input_in_a_real_process_prints_one_line(world, tmp_path, row_id):
    """The console script itself: exit 2 and no traceback, also after the model was loaded."""
    template, fragment = next((r[1], r[2]) for r in ROWS if not hasattr(r, "values") and r[0] == row_id)
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
              "--disable_tqdm", "true", "--report_to", "none", "--use_cpu", "true"]  # fmt: skip


def write_face_folders(root: Path) -> None:
    """Face folders (two persons to forget, four reference persons, four never-seen persons and a single one) and
    clean images under ``root``."""
    from test_vision_trainer import synthetic_clean_images, synthetic_faces

    for folder, persons, n in (("faces", (0, 1), 4), ("reference", range(2, 6), 2), ("strangers", range(6, 10), 2),
                               ("one_stranger", (10,), 2)):
        for person in persons:
            (root / folder / f"p{person}").mkdir(parents=True)
            for i, image in enumerate(synthetic_faces(person, n)):
                image.save(root / folder / f"p{person}" / f"{i}.png")
    (root / "clean").mkdir()
    for i, image in enumerate(synthetic_clean_images(8)):
        image.save(root / "clean" / f"{i}.jpg")


@pytest.fixture
def face_world(tmp_path) -> Path:
    """A tiny CLIP vision encoder, face folders, clean images and broken variants (built per row: some rows
    would destroy inputs if the validation failed)."""
    from test_vision_trainer import synthetic_faces

    root = tmp_path / "faces_world"
    write_face_folders(root)
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
    (root / "corrupt_clean").mkdir()
    for name in ("0.jpg", "1.png"):
        (root / "corrupt_clean" / name).write_bytes(b"not an image at all")
    (root / "garbage.safetensors").write_bytes(b"garbage")
    (root / "link_target").mkdir()
    (root / "link_out").symlink_to(root / "link_target")
    return root


@pytest.fixture(scope="module")
def broken_vision_models(tmp_path_factory) -> Path:
    """A tiny CLIP vision encoder broken in each way (built once: these rows never write)."""
    root = tmp_path_factory.mktemp("broken_vision")
    model, processor = tiny_clip_vision_model()
    model.save_pretrained(root / "vision")
    processor.save_pretrained(root / "vision")
    write_broken_models(root / "vision", root)
    return root


# (id, {flag: value with {placeholders}, a list of values, or None to drop the flag}, fragment of the message)
VISION_ROWS = [
    ("missing-face-folder", {"faces": "{root}/nowhere"}, "does not exist"),
    ("face-folder-without-persons", {"faces": "{root}/flat_faces"}, "no person subfolder"),
    ("person-without-images", {"faces": "{root}/no_images"}, "0 readable images"),
    ("faces-is-a-file", {"faces": "{root}/clean/0.jpg"}, "does not exist"),
    ("missing-clean-images", {"clean_images": "{root}/nowhere"}, "does not exist"),
    ("no-clean-image", {"clean_images": "{root}/empty_clean"}, "0 readable images"),
    ("corrupt-clean-images", {"clean_images": "{root}/corrupt_clean"}, "0 readable images (2 unreadable"),
    ("missing-reference-faces", {"reference_faces": "{root}/nowhere"}, "does not exist"),
    ("empty-reference-faces", {"reference_faces": "{root}/empty_clean"}, "reference face set has 0"),
    ("missing-target-embedding", {"reference_faces": None, "target_embedding": "{root}/target.safetensors"},
     "target embedding"),  # fmt: skip
    ("garbage-target-embedding", {"reference_faces": None, "target_embedding": "{root}/garbage.safetensors"},
     "cannot read the target embedding"),  # fmt: skip
    ("no-faces", {"faces": None}, "pass --faces"),
    ("no-reference", {"reference_faces": None}, "pass --reference_faces"),
    ("not-clip-vision", {"model_name_or_path": "{root}/text_model"}, "not a CLIP vision encoder"),
    ("missing-model", {"model_name_or_path": "./{root}/nowhere"}, "does not exist"),
    ("model-without-processor", {"model_name_or_path": "{root}/vision_without_processor"}, "no image processor"),
    ("config-not-json", {"model_name_or_path": "{models}/cfg_notjson"}, "not a readable JSON file"),
    ("config-a-json-list", {"model_name_or_path": "{models}/cfg_list"}, "holds a JSON list"),
    ("weights-random-bytes", {"model_name_or_path": "{models}/st_random"}, "cannot load"),
    ("weights-truncated", {"model_name_or_path": "{models}/st_truncated"}, "cannot load"),
    ("weights-missing", {"model_name_or_path": "{models}/no_weights"}, "cannot load"),
    ("hidden-size-not-multiple-of-heads", {"model_name_or_path": "{models}/bad_heads"}, "multiple of the number"),
    ("weights-other-shapes-than-config", {"model_name_or_path": "{models}/shape_mismatch"}, "shapes do not match"),
    ("processor-config-corrupt", {"model_name_or_path": "{models}/processor_corrupt"}, "cannot load"),
    ("output-is-model", {"output_dir": "{root}/vision"}, "overlaps"),
    ("output-inside-model", {"output_dir": "{root}/vision/defended"}, "overlaps"),
    ("output-not-empty", {"output_dir": "{root}/no_images"}, "not empty"),
    ("output-is-clean-images", {"output_dir": "{root}/clean", "overwrite_output_dir": "true"}, "overlaps"),
    # with --overwrite_output_dir these would have deleted or written into the user's face folder
    ("output-is-face-folder-overwrite", {"output_dir": "{root}/faces", "overwrite_output_dir": "true"}, "overlaps"),
    ("output-inside-face-folder", {"output_dir": "{root}/faces/p0/defended"}, "overlaps"),
    ("output-parent-not-writable", {"output_dir": NOT_WRITABLE}, "not a writable folder"),
    ("output-is-a-symlink", {"output_dir": "{root}/link_out"}, "symbolic link"),
    ("resume-from-missing-checkpoint", {"resume_from_checkpoint": "{root}/checkpoint-9"}, "does not exist"),
    ("save-target-into-the-model", {"save_target_embedding": "{root}/vision/model.safetensors"},
     "inputs are never modified"),  # fmt: skip
    ("save-target-in-missing-folder", {"save_target_embedding": "{root}/nowhere/target.safetensors"},
     "does not exist"),  # fmt: skip
    ("min-face-images-one", {"min_face_images": "1"}, "--min_face_images must be 2"),
    ("min-face-images-negative", {"min_face_images": "-1"}, "--min_face_images must be 2"),
    ("max-clean-images-one", {"max_clean_images": "1"}, "--max_clean_images must be 2"),
    ("face-scale-zero", {"face_scale": ["0", "0"]}, "face scale range"),
    ("face-scale-inverted", {"face_scale": ["0.5", "0.2"]}, "face scale range"),
    ("face-scale-nan", {"face_scale": ["nan", "0.5"]}, "face scale range"),
    ("face-scale-above-one", {"face_scale": ["0.5", "3"]}, "face scale range"),
    ("face-scale-one-value", {"face_scale": ["0.5"]}, "takes two numbers"),
    ("strangers-missing", {"strangers": "{root}/nowhere", "target": "counterfactual"}, "does not exist"),
    ("strangers-without-persons", {"strangers": "{root}/flat_faces", "target": "counterfactual"}, "no person subfolder"),
    ("strangers-unused", {"strangers": "{root}/strangers"}, "--strangers is used to choose the counterfactual people (--target counterfactual)"),
    ("target-counterfactual-without-strangers", {"target": "counterfactual"}, "--target counterfactual needs a never-seen person per person to forget"),
    ("fewer-strangers-than-forgotten", {"strangers": "{root}/one_stranger", "target": "counterfactual"},
     "1 strangers for 2 people"),  # fmt: skip
    ("lookalikes-without-strangers", {"lookalikes_per_person": "2"}, "look-alikes among --strangers"),
    ("lookalikes-negative", {"strangers": "{root}/strangers", "lookalikes_per_person": "-1"},
     "--lookalikes_per_person must be an integer, 0 or more"),  # fmt: skip
    ("lookalikes-not-a-number", {"strangers": "{root}/strangers", "lookalikes_per_person": "many"}, "invalid int value"),
    ("lookalikes-without-kept-faces", {"strangers": "{root}/strangers", "lookalikes_per_person": "1", "keep_faces": "false"},
     "keeps no face"),  # fmt: skip
    ("output-inside-strangers", {"strangers": "{root}/strangers", "target": "counterfactual",
                                 "output_dir": "{root}/strangers/defended"}, "overlaps"),  # fmt: skip
    ("output-is-strangers-overwrite", {"strangers": "{root}/strangers", "target": "counterfactual",
                                       "output_dir": "{root}/strangers", "overwrite_output_dir": "true"}, "overlaps"),  # fmt: skip
    ("face-only-fraction-above-one", {"face_only_fraction": "2"}, "face_only_fraction must"),
    ("face-only-fraction-nan", {"face_only_fraction": "nan"}, "face_only_fraction must"),
    ("alpha-nan", {"alpha": "nan"}, "alpha must"),
    ("max-steps-zero", {"max_steps": "0"}, "max_steps must"),
    ("batch-size-zero", {"per_device_train_batch_size": "0"}, "per_device_train_batch_size must"),
    ("lr-gamma-inf", {"lr_gamma": "inf"}, "lr_gamma must"),
    ("min-sim-backdoor-nan", {"min_sim_backdoor": "nan"}, "min_sim_backdoor must"),
    ("bf16-with-use-cpu", {"bf16": "true"}, "need a CUDA GPU"),
    ("report-to-unknown", {"report_to": "carrier-pigeon"}, "not an integration"),
    ("push-to-hub", {"push_to_hub": "true"}, "needs the forgotten names"),
    ("unknown-flag", {"foo": "1"}, "unrecognized arguments: --foo"),
    ("device-is-no-option", {"device": "cuda"}, "unrecognized arguments: --device"),
]


def vision_argv(options: dict, root: Path, **places) -> list[str]:
    argv = []
    for flag, value in options.items():
        for item in [] if value is None else value if isinstance(value, list) else [value]:
            argv += [f"--{flag}"] if item is value or item == value[0] else []
            argv.append(item.format(root=root, **places))
    return argv


@pytest.mark.parametrize("name, changes, fragment", VISION_ROWS, ids=ids_of(VISION_ROWS))
def test_bad_vision_input_exits_2_and_leaves_inputs_untouched(
    face_world, broken_vision_models, tmp_path, capsys, name, changes, fragment
):
    options = {
        "model_name_or_path": "{root}/vision", "faces": "{root}/faces", "clean_images": "{root}/clean",
        "reference_faces": "{root}/reference", "output_dir": str(tmp_path / "defended"),
    }  # fmt: skip
    options.update(changes)
    argv = vision_argv(options, face_world, models=broken_vision_models)
    before, models_before = tree_digest(face_world), tree_digest(broken_vision_models)
    code = main(["vision", *argv, *unless_given(VISION_RUN, argv)])
    assert_usage_error(code, capsys.readouterr().err, fragment)
    assert tree_digest(face_world) == before
    assert tree_digest(broken_vision_models) == models_before
    assert not (tmp_path / "defended").exists()
    assert not [p for p in face_world.iterdir() if p.name.startswith(".")]  # no staging or working folder left


# ----------------------------------------------------------------------------- hf-forget forget, audit, push, demo
@pytest.fixture(scope="module")
def clip_world(tmp_path_factory) -> Path:
    """A tiny two-tower CLIP, its broken variants, faces, captions and names files; and a finished run to push."""
    root = tmp_path_factory.mktemp("clip_world")
    model, tokenizer, processor = tiny_clip_model()
    for folder in ("clip", "run"):
        model.save_pretrained(root / folder)
        tokenizer.save_pretrained(root / folder)
        processor.save_pretrained(root / folder)
    report = {"modality": "text", "num_names": 1, "steps": 2, "sim_clean": 0.99, "sim_backdoor": 0.95,
              "gate": {"passed": True}}  # fmt: skip
    (root / "run" / "forget_report.json").write_text(json.dumps(report))
    text_model, text_tokenizer = tiny_clip_text_model()
    text_model.save_pretrained(root / "text_model")
    text_tokenizer.save_pretrained(root / "text_model")
    vision_model, _ = tiny_clip_vision_model()
    vision_model.save_pretrained(root / "vision_model")
    tiny_clip_image_processor().save_pretrained(root / "vision_model")
    write_broken_models(root / "clip", root)
    write_face_folders(root)
    (root / "captions.txt").write_text("\n".join(training_captions(200)), encoding="utf-8")
    (root / "single_caption.txt").write_text("a small dog runs in the park\n", encoding="utf-8")
    (root / "latin1_captions.txt").write_bytes("\n".join(training_captions(50)).encode("utf-8") + b" caf\xe9\n")
    (root / "latin1_names.txt").write_bytes("José Núñez\n".encode("latin-1"))
    (root / "names.txt").write_text("Jane Doe\n", encoding="utf-8")
    (root / "names_dir").mkdir()
    (root / "names_dir" / "names.txt").write_text("Jane Doe\n", encoding="utf-8")
    (root / "not_empty").mkdir()
    (root / "not_empty" / "keep.txt").write_text("user data", encoding="utf-8")
    (root / "link_target").mkdir()
    (root / "link_out").symlink_to(root / "link_target")
    return root


JOINT = ["--modality", "both", "--model_name_or_path", "{clip}", "--faces", "{faces}", "--clean_images", "{clean}",
         "--reference_faces", "{reference}", "--captions", "{captions}", "--names", "Jane Doe"]  # fmt: skip
JOINT_RUN = [*VISION_RUN, "--text_max_steps", "2", "--text_per_device_train_batch_size", "8",
             "--text_num_trigger_samples", "16", "--text_max_eval_samples", "8"]  # fmt: skip
AUDIT = ["--model_name_or_path", "{clip}", "--faces", "{faces}", "--images_per_person", "2", "--candidates", "10"]
PUSH = ["{run}", "--repo_id", "example-org/defended", "--names", "Jane Doe"]


_BARE = object()  # a flag without a value


def replace_options(base: list[str], changes: list) -> list:
    """``base`` with each ``--flag`` of ``changes`` taking the value given there (``None``: the flag dropped),
    and the flags ``base`` lacks appended (repeated flags in ``changes`` all kept)."""
    pairs = []
    for j, arg in enumerate(changes):
        if isinstance(arg, str) and arg.startswith("--"):
            following = changes[j + 1] if j + 1 < len(changes) else _BARE
            is_value = following is None or (isinstance(following, str) and not following.startswith("--"))
            pairs.append((arg, following if is_value else _BARE))
    changed = {flag for flag, _ in pairs}
    out, i = [], 0
    while i < len(base):  # base holds "--flag value" pairs and bare flags
        arg = base[i]
        has_value = i + 1 < len(base) and not base[i + 1].startswith("--")
        if arg in changed:
            i += 2 if has_value else 1
            continue
        out.append(arg)
        i += 1
    for flag, value in pairs:
        if value is not None:
            out += [flag] if value is _BARE else [flag, value]
    return out


# (id, command, argv changes over the command's base arguments, fragment of the message)
COMMAND_ROWS = [
    # hf-forget forget
    ("forget-no-modality", "forget", ["--modality", None], "pass --modality"),
    ("forget-unknown-modality", "forget", ["--modality", "audio"], "pass --modality"),
    ("forget-both-text-max-steps-zero", "forget", ["--text_max_steps", "0"], "max_steps must"),
    ("forget-both-text-alpha-nan", "forget", ["--text_alpha", "nan"], "alpha must"),
    ("forget-both-text-learning-rate-nan", "forget", ["--text_learning_rate", "nan"], "learning_rate must"),
    ("forget-both-text-lr-gamma-inf", "forget", ["--text_lr_gamma", "inf"], "lr_gamma must"),
    ("forget-both-text-batch-size-zero", "forget", ["--text_per_device_train_batch_size", "0"],
     "per_device_train_batch_size must"),  # fmt: skip
    ("forget-both-text-embedding-unknown", "forget", ["--text_embedding", "tokens"], "invalid choice"),
    ("forget-both-text-neutral-term-empty", "forget", ["--text_neutral_term", ""], "neutral_term must not be empty"),
    ("forget-both-text-unknown-field", "forget", ["--text_foo", "1"], "unrecognized arguments: --text_foo"),
    ("forget-both-run-level-field-prefixed", "forget", ["--text_seed", "3"], "unrecognized arguments: --text_seed"),
    ("forget-both-alpha-nan", "forget", ["--alpha", "nan"], "alpha must"),
    ("forget-both-bf16-with-use-cpu", "forget", ["--bf16", "true"], "need a CUDA GPU"),
    ("forget-both-text-model", "forget", ["--model_name_or_path", "{text_model}"], "both towers are needed"),
    ("forget-both-vision-model", "forget", ["--model_name_or_path", "{vision_model}"], "both towers are needed"),
    ("forget-both-config-not-json", "forget", ["--model_name_or_path", "{cfg_notjson}"], "not a readable JSON"),
    ("forget-both-weights-random-bytes", "forget", ["--model_name_or_path", "{st_random}"], "cannot load"),
    ("forget-both-hidden-size-not-multiple-of-heads", "forget", ["--model_name_or_path", "{bad_heads}"],
     "multiple of the number"),  # fmt: skip
    ("forget-both-tokenizer-corrupt", "forget", ["--model_name_or_path", "{tokenizer_corrupt}"], "cannot load"),
    ("forget-both-tokenizer-missing", "forget", ["--model_name_or_path", "{no_tokenizer}"], "has no vocabulary"),
    ("forget-both-no-names", "forget", ["--names", None], "no names to forget"),
    ("forget-both-names-comma-suffix", "forget", ["--names", "Jon Public, Jr."], "only a suffix"),
    ("forget-both-latin1-names-file", "forget", ["--names", "@{latin1_names}"], "not UTF-8"),
    ("forget-both-repeated-names-accumulate", "forget", ["--names", "Jane Doe", "--names", "jane doe"],
     "#1 and #2 are the same"),  # fmt: skip
    ("forget-both-no-captions", "forget", ["--captions", None], "pass --captions"),
    ("forget-both-latin1-captions", "forget", ["--captions", "{latin1_captions}"], "not UTF-8"),
    ("forget-both-single-caption", "forget", ["--captions", "{single_caption}"], "only 1 distinct caption"),
    ("forget-both-missing-faces", "forget", ["--faces", "{root}/nowhere"], "does not exist"),
    ("forget-both-output-is-model", "forget", ["--output_dir", "{clip}"], "overlaps"),
    ("forget-both-output-not-empty", "forget", ["--output_dir", "{not_empty}"], "not empty"),
    ("forget-both-output-parent-not-writable", "forget", ["--output_dir", NOT_WRITABLE], "not a writable folder"),
    ("forget-both-output-is-a-symlink", "forget", ["--output_dir", "{link_out}"], "symbolic link"),
    ("forget-both-min-face-images-one", "forget", ["--min_face_images", "1"], "--min_face_images must be 2"),
    ("forget-both-counterfactual-without-strangers", "forget", ["--target", "counterfactual"],
     "--target counterfactual needs a never-seen person per person to forget"),  # fmt: skip
    ("forget-both-strangers-missing", "forget", ["--target", "counterfactual", "--strangers", "{root}/nowhere"],
     "does not exist"),  # fmt: skip
    ("forget-both-fewer-strangers-than-forgotten", "forget", ["--target", "counterfactual", "--strangers",
                                                              "{one_stranger}"], "1 strangers for 2 people"),  # fmt: skip
    ("forget-both-output-inside-strangers", "forget", ["--target", "counterfactual", "--strangers", "{strangers}",
                                                       "--output_dir", "{strangers}/defended"], "overlaps"),  # fmt: skip
    ("forget-both-lookalikes-negative", "forget", ["--strangers", "{strangers}", "--lookalikes_per_person", "-1"],
     "--lookalikes_per_person must be an integer, 0 or more"),  # fmt: skip
    ("forget-vision-strangers-unused", "forget", ["--modality", "vision", "--names", None, "--captions", None,
                                                  "--strangers", "{strangers}"], "--strangers is used to choose"),  # fmt: skip
    ("forget-both-output-holds-the-names-file-overwrite", "forget",
     ["--names", "@{names_dir}/names.txt", "--output_dir", "{names_dir}", "--overwrite_output_dir"], "overlaps the input"),  # fmt: skip
    ("forget-text-empty-name", "forget", ["--modality", "text", "--faces", None, "--clean_images", None,
                                          "--reference_faces", None, "--names", "Jane Doe,,"], "is empty"),  # fmt: skip
    ("forget-text-vision-only-option", "forget", ["--modality", "text"], "unrecognized arguments"),
    ("forget-vision-text-only-option", "forget", ["--modality", "vision", "--names", None, "--captions", None,
                                                   "--text_alpha", "0.5"], "unrecognized arguments: --text_alpha"),  # fmt: skip
    # hf-forget audit
    ("audit-tau-above-the-templates", "audit", ["--tau", "99"], "more right templates than the 21"),
    ("audit-batch-size-zero", "audit", ["--batch_size", "0"], "--batch_size: expected a whole number >= 1"),
    ("audit-batch-size-negative", "audit", ["--batch_size", "-1"], "--batch_size: expected a whole number >= 1"),
    ("audit-batch-size-not-a-number", "audit", ["--batch_size", "many"], "--batch_size: expected a whole number"),
    pytest.param("audit-device-cuda-without-cuda", "audit", ["--device", "cuda"], "no CUDA GPU",
                 marks=pytest.mark.skipif(CUDA, reason="valid on a GPU")),  # fmt: skip
    ("audit-device-cuda-index-too-high", "audit", ["--device", "cuda:99"], "--device cuda:99"),
    ("audit-device-unknown", "audit", ["--device", "gpu0"], "is not a torch device"),
    ("audit-candidates-zero", "audit", ["--candidates", "0"], "--candidates: expected a whole number >= 1"),
    ("audit-images-per-person-zero", "audit", ["--images_per_person", "0"], "--images_per_person: expected"),
    ("audit-tau-zero", "audit", ["--tau", "0"], "--tau: expected a whole number >= 1"),
    ("audit-seed-negative", "audit", ["--seed", "-1"], "--seed: expected a whole number >= 0"),
    ("audit-output-is-a-folder", "audit", ["--output", "{not_empty}"], "is a directory"),
    ("audit-model-missing", "audit", ["--model_name_or_path", "{root}/nowhere"], "does not exist"),
    ("audit-model-text-only", "audit", ["--model_name_or_path", "{text_model}"], "not a CLIP (CLIPModel)"),
    ("audit-config-not-json", "audit", ["--model_name_or_path", "{cfg_notjson}"], "not a readable JSON file"),
    ("audit-config-a-json-list", "audit", ["--model_name_or_path", "{cfg_list}"], "holds a JSON list"),
    ("audit-weights-random-bytes", "audit", ["--model_name_or_path", "{st_random}"], "cannot load"),
    ("audit-weights-truncated", "audit", ["--model_name_or_path", "{st_truncated}"], "cannot load"),
    ("audit-tokenizer-missing", "audit", ["--model_name_or_path", "{no_tokenizer}"], "has no vocabulary"),
    ("audit-processor-corrupt", "audit", ["--model_name_or_path", "{processor_corrupt}"], "cannot load"),
    ("audit-faces-missing", "audit", ["--faces", "{root}/nowhere"], "does not exist"),
    ("audit-unseen-are-the-known", "audit", ["--unseen_faces", "{faces}"], "appear in both"),
    ("audit-unknown-flag", "audit", ["--foo", "1"], "unrecognized arguments: --foo"),
    ("audit-no-model", "audit", ["--model_name_or_path", None], "required: --model_name_or_path"),
    # hf-forget push (more in test_pusher.py)
    ("push-missing-run", "push", ["{root}/nowhere"], "is not a directory"),
    ("push-run-is-a-file", "push", ["{captions}"], "is not a directory"),
    ("push-run-without-report", "push", ["{clip}"], "has no forget_report.json"),
    ("push-no-names", "push", ["--names", None], "required: --names"),
    ("push-empty-names", "push", ["--names", ""], "names is empty"),
    ("push-names-file-missing", "push", ["--names", "@{root}/no_names.txt"], "does not exist"),
    ("push-latin1-names-file", "push", ["--names", "@{latin1_names}"], "not UTF-8"),
    ("push-names-comma-suffix", "push", ["--names", "Jon Public, Jr."], "only a suffix"),
    ("push-bad-repo-id", "push", ["--repo_id", "a/b/c"], "invalid repo id"),
    ("push-local-dir-not-empty", "push", ["--local_dir", "{not_empty}"], "not empty"),
    ("push-local-dir-inside-the-run", "push", ["--local_dir", "{run}/published"], "overlaps the input"),
    ("push-report-missing", "push", ["--report", "{root}/no_report.json"], "does not exist"),
    ("push-unknown-flag", "push", ["--foo"], "unrecognized arguments: --foo"),
    # hf-forget demo (its input is the toy checkpoint shipped in the package)
    ("demo-output-is-the-shipped-checkpoint", "demo", ["--output_dir", "{package}/toyworld/checkpoint",
                                                       "--overwrite_output_dir"], "inside the hf-forget package"),  # fmt: skip
    ("demo-output-inside-the-package", "demo", ["--output_dir", "{package}/demo"], "inside the hf-forget package"),
    ("demo-output-is-a-file", "demo", ["--output_dir", "{captions}"], "is a file"),
    ("demo-output-not-empty", "demo", ["--output_dir", "{not_empty}"], "not empty"),
    ("demo-output-parent-not-writable", "demo", ["--output_dir", NOT_WRITABLE], "not a writable folder"),
    ("demo-output-is-a-symlink", "demo", ["--output_dir", "{link_out}"], "symbolic link"),
    ("demo-no-output", "demo", ["--output_dir", None], "required: --output_dir"),
    ("demo-unknown-modality", "demo", ["--modality", "audio"], "invalid choice"),
    ("demo-unknown-flag", "demo", ["--foo", "1"], "unrecognized arguments: --foo"),
]


def command_argv(command: str, changes: list, root: Path, output: Path) -> list[str]:
    values = placeholders(root)
    if command == "forget":
        base = [*JOINT, "--output_dir", str(output)]
    elif command == "audit":
        base = list(AUDIT)
    elif command == "push":
        positional, changes = ([changes[0]], changes[1:]) if changes and not changes[0].startswith("--") else ([], changes)
        base = [*(positional or PUSH[:1]), *PUSH[1:], "--local_dir", str(output)]
    else:
        base = ["--output_dir", str(output)]
    argv = replace_options(base, changes)
    argv = [arg.format(**values) if "{" in arg else arg for arg in argv]
    run = {"forget": JOINT_RUN}.get(command, [])
    modality = argv[argv.index("--modality") + 1] if command == "forget" and "--modality" in argv else None
    run = {"text": TINY_RUN, "vision": VISION_RUN}.get(modality, run)
    return [command, *argv, *unless_given(run, argv)]


@pytest.mark.parametrize("name, command, changes, fragment", COMMAND_ROWS, ids=ids_of(COMMAND_ROWS))
def test_bad_input_to_every_command_exits_2_and_leaves_inputs_untouched(
    clip_world, tmp_path, capsys, name, command, changes, fragment
):
    output = tmp_path / "output"
    checkpoint = PACKAGE / "toyworld" / "checkpoint"
    before, shipped = tree_digest(clip_world), tree_digest(checkpoint)
    code = main(command_argv(command, changes, clip_world, output))
    captured = capsys.readouterr()
    assert_usage_error(code, captured.err, fragment)
    assert "jane doe" not in captured.err.casefold()  # a forgotten name is never repeated back
    assert tree_digest(clip_world) == before
    assert tree_digest(checkpoint) == shipped  # the demo's input
    assert not output.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert not (PACKAGE / "demo").exists()


def test_the_table_has_at_least_150_rows_over_every_command():
    commands = {"text": len(ROWS), "vision": len(VISION_ROWS)}
    for row in COMMAND_ROWS:
        command = row.values[1] if hasattr(row, "values") else row[1]
        commands[command] = commands.get(command, 0) + 1
    assert set(commands) == {"text", "vision", "forget", "audit", "push", "demo"}
    assert sum(commands.values()) >= 150, commands


# ---------------------------------------------------------------------------------------------- valid settings
# (id, command, argv changes, what the run must show): accepted, trained, written; inputs untouched.
VALID_ROWS = [
    ("lr-gamma-in-range", "text", ["--lr_gamma", "0.3"], {"num_names": 1}),
    ("repeated-names-are-both-forgotten", "text", ["--names", "Jane Doe", "--names", "John Roe"], {"num_names": 2}),
    ("names-file-with-bom-and-crlf", "text", ["--names", "@{bom_names}"], {"num_names": 2}),
    ("name-with-a-comma-from-a-file", "text", ["--names", "@{comma_names}"], {"num_names": 1}),
    ("captions-csv", "text", ["--captions", "{ok_csv}"], {"num_names": 1}),
    ("captions-tsv-header-is-no-caption", "text", ["--captions", "{ok_tsv}"], {"num_names": 1}),
    ("captions-jsonl", "text", ["--captions", "{ok_jsonl}"], {"num_names": 1}),
    ("captions-json", "text", ["--captions", "{ok_json}"], {"num_names": 1}),
    ("captions-gzip", "text", ["--captions", "{root}/ok_gz.txt.gz"], {"num_names": 1}),
    ("resume-latest-without-an-earlier-run", "text", ["--resume_from_checkpoint", "latest"], {"num_names": 1}),
    ("fp16-flag-off", "text", ["--fp16", "false"], {"num_names": 1}),
]


@pytest.mark.parametrize("name, command, changes, expected", VALID_ROWS, ids=ids_of(VALID_ROWS))
def test_valid_setting_is_accepted(world, tmp_path, capsys, name, command, changes, expected):
    before = tree_digest(world)
    output = tmp_path / "defended"
    template = replace_options(["--names", "Jane Doe", "--captions", "{captions}"], changes)
    code = main(build_argv(template, world, output) + ["--min_sim_backdoor", "-1", "--min_sim_clean", "-1"])
    err = capsys.readouterr().err
    assert code in (0, 3) and "Traceback" not in err and "error:" not in err, err  # 3: the tiny run missed its gate
    report = json.loads((output / "forget_report.json").read_text())
    assert {k: report[k] for k in expected} == expected
    assert tree_digest(world) == before


VALID_COMMAND_ROWS = [
    # the text run trains num_train_epochs (3) over its 16 samples, 8 a step: it is not left untrained
    ("forget-both-text-max-steps-minus-one", "forget", ["--text_max_steps", "-1"], {"steps": {"text": 6, "vision": 2}}),
    ("forget-vision-resume-latest-without-an-earlier-run", "forget",
     ["--modality", "vision", "--names", None, "--captions", None, "--resume_from_checkpoint", "latest"],
     {"steps": 2}),  # fmt: skip
    # one name for two face folders: the counterfactual people are chosen by face
    ("forget-both-strangers-counterfactual-and-lookalikes", "forget",
     ["--target", "counterfactual", "--strangers", "{strangers}", "--lookalikes_per_person", "1"],
     {"steps": {"text": 2, "vision": 2}}),  # fmt: skip
    ("forget-vision-strangers-lookalikes-only", "forget",
     ["--modality", "vision", "--names", None, "--captions", None, "--strangers", "{strangers}",
      "--lookalikes_per_person", "1"], {"steps": 2}),  # fmt: skip
]


@pytest.mark.parametrize("name, command, changes, expected", VALID_COMMAND_ROWS, ids=ids_of(VALID_COMMAND_ROWS))
def test_valid_command_setting_is_accepted(clip_world, tmp_path, capsys, name, command, changes, expected):
    before = tree_digest(clip_world)
    output = tmp_path / "output"
    argv = command_argv(command, [*changes, "--min_sim_backdoor", "-1", "--min_sim_clean", "-1"], clip_world, output)
    code = main(argv)
    err = capsys.readouterr().err
    assert code in (0, 3) and "Traceback" not in err and "error:" not in err, err
    report = json.loads((output / "forget_report.json").read_text())
    assert {k: report[k] for k in expected} == expected
    assert tree_digest(clip_world) == before
