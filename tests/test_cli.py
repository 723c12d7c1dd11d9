"""The `hf-forget` command framework: fast start, --config files, one-line errors, grouped --help, clean stdout."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hf_forget.config import parse_names

from hf_forget.cli import COMMANDS, EXIT_USAGE, main
from hf_forget.cli import forget, push, text, vision

ROOT = Path(__file__).resolve().parents[1]
TINY_RUN = ["--learning_rate", "1e-2", "--max_steps", "2", "--per_device_train_batch_size", "8", "--num_trigger_samples", "16",
            "--max_eval_samples", "8", "--disable_tqdm", "true", "--report_to", "none", "--logging_steps", "1",
            "--min_sim_backdoor", "0", "--min_sim_clean", "0"]  # fmt: skip


def _env():
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("hf-forget: error: ") and "Traceback" not in err, err
    return lines[0]


# --- start-up -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("flag", ["--version", "--help"])
def test_version_and_help_answer_in_under_two_seconds(flag):
    """Measured ~0.1 s (idle 2-core box) against ~4 s when the package imported torch and transformers eagerly."""
    times = []
    for _ in range(3):  # the best of three: a loaded machine slows a run, it never speeds one up
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "hf_forget.cli", flag], capture_output=True, text=True,
                              env=_env(), timeout=60)  # fmt: skip
        times.append(time.perf_counter() - start)
        assert proc.returncode == 0, proc.stderr
    assert min(times) < 2.0, times
    assert ("hf-forget 0.1.0" in proc.stdout) if flag == "--version" else all(c in proc.stdout for c in COMMANDS)


def test_the_package_and_the_dispatcher_import_neither_torch_nor_transformers():
    code = ("import sys, hf_forget, hf_forget.cli; hf_forget.cli.make_parser(); hf_forget.__version__; "
            "print([m for m in ('torch', 'transformers') if m in sys.modules])")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(), timeout=60)
    assert proc.stdout.strip() == "[]", proc.stderr


def test_every_public_name_is_importable():
    import hf_forget

    for name in hf_forget.__all__:
        assert getattr(hf_forget, name) is not None
    with pytest.raises(AttributeError):
        hf_forget.not_a_public_name  # noqa: B018


def test_every_command_has_make_parser_and_main():
    import importlib

    for name in COMMANDS:
        module = importlib.import_module(f"hf_forget.cli.{name}")
        assert callable(module.make_parser) and callable(module.main)
        assert module.make_parser().format_help()
        assert module.HELP == COMMANDS[name]  # the dispatcher's table lists it without importing the module


# --- --config FILE ------------------------------------------------------------------------------------------------
TEXT_YAML = """\
model_name_or_path: base
captions: captions.txt
names: [Ann Example, Bo Example]
output_dir: out
max_steps: 7
learning_rate: 1e-3   # YAML reads this as a string: converted as on the command line
lr_milestones: [3, 5]
disable_tqdm: true
embedding: pooled
"""


@pytest.mark.parametrize("suffix", ["yaml", "json"])
def test_config_file_gives_defaults_and_the_command_line_overrides(tmp_path, suffix):
    path = tmp_path / f"text.{suffix}"
    if suffix == "yaml":
        path.write_text(TEXT_YAML)
    else:
        path.write_text(json.dumps({"model_name_or_path": "base", "captions": "captions.txt", "output_dir": "out",
                                    "names": "Ann Example,Bo Example", "max_steps": 7, "learning_rate": 0.001,
                                    "lr_milestones": [3, 5], "disable_tqdm": True, "embedding": "pooled"}))  # fmt: skip
    script_args, config = text.make_parser().parse_args_and_config(
        ["--config", str(path), "--max_steps", "9", "--embedding", "hidden"]
    )
    assert (script_args.model_name_or_path, script_args.captions) == ("base", "captions.txt")
    assert parse_names(script_args.names) == ["Ann Example", "Bo Example"] and config.output_dir == "out"
    assert config.max_steps == 9 and config.embedding == "hidden"  # the command line wins
    assert config.learning_rate == 0.001 and config.lr_milestones == [3, 5] and config.disable_tqdm is True
    assert config.alpha == 0.6  # in neither: the default


def test_config_file_for_an_argparse_command(tmp_path):
    path = tmp_path / "push.yaml"
    path.write_text("path: run\nrepo_id: me/clip-defended\nnames: [Ann Example]\nprivate: true\nlicense: mit\n")
    args = push.make_parser().parse_args_and_config(["--config", str(path)])
    assert (args.path, args.repo_id, args.names, args.private, args.license) == (
        "run", "me/clip-defended", ["Ann Example"], True, "mit")  # fmt: skip
    # the command line replaces (not extends) the file's names, and the positional
    args = push.make_parser().parse_args_and_config([f"--config={path}", "other", "--names", "Bo Example"])
    assert (args.path, args.names, args.repo_id) == ("other", ["Bo Example"], "me/clip-defended")


def test_forget_reads_its_modality_from_the_config_file(tmp_path):
    path = tmp_path / "forget.yaml"
    path.write_text("modality: text\noutput_dir: out\nnames: Ann Example\n")
    assert forget.modality_of(["--config", str(path)]) == "text"
    script_args, config, options = forget.make_parser("text").parse_args_and_config(["--config", str(path)])
    assert options.modality == "text" and script_args.names == ["Ann Example"] and hasattr(script_args, "captions")


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("max_steps: 5\nnot_an_option: 1\nanother: 2\n", "unknown key(s) 'another', 'not_an_option'"),
        ("max_steps: many\n", "'max_steps' takes a int value"),
        ("embedding: sideways\n", "'embedding' takes one of: pooled, hidden, both"),
        ("- a list\n", "must hold a mapping"),
        ("max_steps: [1, 2\n", "is not valid YAML"),
    ],
)
def test_bad_config_file_is_one_line_and_exit_2(tmp_path, capsys, content, fragment):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    assert main(["text", "--config", str(path), "--output_dir", str(tmp_path / "out")]) == EXIT_USAGE
    assert fragment in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


def test_unknown_key_for_an_argparse_command(tmp_path, capsys):
    path = tmp_path / "push.json"
    path.write_text(json.dumps({"repo_id": "a/b", "names": ["X"], "max_steps": 3}))
    assert main(["push", "run", "--config", str(path)]) == EXIT_USAGE
    assert "unknown key(s) 'max_steps': not options of `hf-forget push`" in one_error_line(capsys.readouterr().err)


def test_missing_config_file(tmp_path, capsys):
    assert main(["vision", "--config", str(tmp_path / "nope.yaml")]) == EXIT_USAGE
    assert "does not exist" in one_error_line(capsys.readouterr().err)


# --- unknown flags and bad values ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["text", "--output_dir", "x", "--foo", "1"], "unrecognized arguments: --foo <value>"),
        (["text", "--output_dir", "x", "--device", "cuda"], "unrecognized arguments: --device <value>"),
        (["text", "--output_dir", "x", "--max_step", "3"], "unrecognized arguments: --max_step <value>"),  # no abbrev.
        (["text", "--output_dir", "x", "--nmes", "Ann Example"], "unrecognized arguments: --nmes <value>"),
        (["text", "--output_dir", "x", "--max_steps", "many"], "argument --max_steps"),
        (["text", "--names", "Ann Example"], "required: --output_dir"),
        (["vision", "--output_dir", "x", "--foo"], "unrecognized arguments: --foo"),
        (["forget", "--modality", "both", "--output_dir", "x", "--foo"], "unrecognized arguments: --foo"),
        (["forget", "--output_dir", "x"], "pass --modality text, vision or both"),
        (["audit", "--model_name_or_path", "m", "--faces", "f", "--bogus"], "unrecognized arguments: --bogus"),
        (["push", "run", "--repo_id", "a/b"], "required: --names"),
        (["demo", "--output_dir", "x", "--modality", "audio"], "argument --modality: invalid choice: 'audio'"),
        (["bogus"], "unknown command 'bogus'"),
        ([], "pass a command"),
    ],
)
def test_unknown_flags_and_bad_values_are_one_line_and_exit_2(tmp_path, capsys, argv, fragment):
    os.chdir(tmp_path)  # nothing is written, but if it were, not into the repository
    assert main(argv) == EXIT_USAGE
    captured = capsys.readouterr()
    assert fragment in one_error_line(captured.err) and captured.out == ""
    assert "Ann Example" not in captured.err


# --- grouped --help -----------------------------------------------------------------------------------------------
def _sections(help_text: str) -> dict[str, str]:
    sections, title = {}, None
    for line in help_text.splitlines():
        if line and not line.startswith(" ") and line.endswith(":"):
            title = line[:-1]
            sections[title] = ""
        elif title:
            sections[title] += line + "\n"
    return sections


@pytest.mark.parametrize(
    "argv, config_class, own",
    [
        (["text"], "TextForgetConfig", "--captions"),
        (["vision"], "VisionForgetConfig", "--faces"),
        (["forget", "--modality", "both"], "VisionForgetConfig", "--text_max_steps"),
    ],
)
def test_help_groups_own_then_forgetting_then_trainer_settings(capsys, argv, config_class, own):
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    sections = _sections(help_text)
    forgetting, trainer = f"forgetting settings ({config_class})", "Trainer settings (transformers.TrainingArguments)"
    assert list(sections) == ["command arguments", forgetting, trainer], list(sections)
    assert "--config FILE" in sections["command arguments"] and own in sections["command arguments"]
    assert "--alpha" in sections[forgetting] and "--lr_milestones" in sections[forgetting]
    assert "--alpha" not in sections[trainer] and "--captions" not in sections[trainer]
    for option in ("--learning_rate", "--output_dir", "--seed", "--bf16"):  # ours changes learning_rate's default
        assert option in sections[trainer] and option not in sections[forgetting]
    assert help_text.startswith("usage: ") and help_text.splitlines()[1] == ""  # one usage line, not every option


def test_names_come_early_in_text_help(capsys):
    with pytest.raises(SystemExit):
        main(["text", "--help"])
    lines = capsys.readouterr().out.splitlines()
    at = next(i for i, line in enumerate(lines) if line.lstrip().startswith("--names"))
    assert at < 40, at  # the old flat list had it at line 645


# --- stdout holds the result only ---------------------------------------------------------------------------------
def test_text_run_prints_one_json_line_and_logs_to_stderr(tiny_text_encoder_dir, captions_file, tmp_path, capsys):
    out = tmp_path / "defended"
    config = tmp_path / "run.yaml"
    config.write_text(f"model_name_or_path: {tiny_text_encoder_dir}\ncaptions: {captions_file}\nnames: Ann Example\n")
    assert main(["text", "--config", str(config), "--output_dir", str(out), *TINY_RUN, "-v"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 1, captured.out
    summary = json.loads(lines[0])
    assert summary["output_dir"] == str(out) and summary["steps"] == 2 and summary["passed"] is True
    assert "'loss'" in captured.err  # the Trainer's per-step log dicts went to stderr, not stdout
    assert "Ann Example" not in captured.out + captured.err
