"""`hf-forget audit`: the table, the JSON, --redact, and user errors as exit code 2."""

import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from hf_forget.cli import main
from hf_forget.testing import tiny_clip_model, tiny_clip_text_model

PEOPLE = ["Ada Quill", "Bo Rinner", "Cy Tamsin"]


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    model, tokenizer, processor = tiny_clip_model()
    path = tmp_path_factory.mktemp("clip")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    processor.save_pretrained(path)
    return path


def write_faces(root, people, count=3, seed=0):
    rng = np.random.default_rng(seed)
    for person in people:
        (root / person).mkdir(parents=True)
        for k in range(count):
            Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(root / person / f"{k}.png")
    return root


def audit(*args):
    return main(["audit", "--candidates", "20", "--images_per_person", "2", *map(str, args)])


def test_audit_prints_a_table_and_writes_json(clip_dir, tmp_path, capsys):
    faces = write_faces(tmp_path / "faces", PEOPLE[:2])
    unseen = write_faces(tmp_path / "unseen", PEOPLE[2:], seed=1)
    output = tmp_path / "audit.json"
    assert audit("--model_name_or_path", clip_dir, "--faces", faces, "--unseen_faces", unseen, "--output", output) == 0
    printed = capsys.readouterr().out
    assert all(name in printed for name in PEOPLE) and "TPR" in printed and "FPR" in printed
    data = json.loads(output.read_text())
    persons = data["idia"]["persons"]
    assert [p["name"] for p in persons] == PEOPLE
    assert [p["expected_known"] for p in persons] == [True, True, False]
    assert data["idia"]["num_candidates"] == 20 and data["idia"]["num_templates"] == 21
    recognised = [p["recognised"] for p in persons]
    assert data["idia"]["tpr"] == sum(recognised[:2]) / 2 and data["idia"]["fpr"] == float(recognised[2])


def test_redact_prints_and_writes_indices_only(clip_dir, tmp_path, capsys):
    faces = write_faces(tmp_path / "faces", PEOPLE)
    output = tmp_path / "audit.json"
    assert audit("--model_name_or_path", clip_dir, "--faces", faces, "--output", output, "--redact") == 0
    captured = capsys.readouterr()
    text = captured.out + captured.err + output.read_text()
    assert not any(part in text for name in PEOPLE for part in name.split())
    assert "#0" in captured.out and "#2" in captured.out


def test_persons_with_too_few_images_are_skipped_and_listed(clip_dir, tmp_path, capsys):
    faces = write_faces(tmp_path / "faces", PEOPLE[:2])
    write_faces(tmp_path / "faces", PEOPLE[2:], count=1)
    assert audit("--model_name_or_path", clip_dir, "--faces", faces) == 0
    assert "skipped (fewer than 2 images): Cy Tamsin" in capsys.readouterr().out


@pytest.mark.parametrize("problem", ["missing_faces", "missing_model", "not_clip", "too_few_images", "overlap"])
def test_user_errors_exit_2_with_one_line(problem, clip_dir, tmp_path, capsys):
    faces = write_faces(tmp_path / "faces", PEOPLE[:2], count=3 if problem != "too_few_images" else 1)
    model = clip_dir
    extra = []
    if problem == "missing_faces":
        faces = tmp_path / "nope"
    elif problem == "missing_model":
        model = tmp_path / "no-model"
    elif problem == "not_clip":
        text_model, tokenizer = tiny_clip_text_model()
        model = tmp_path / "text-only"
        text_model.save_pretrained(model)
        tokenizer.save_pretrained(model)
    elif problem == "overlap":
        extra = ["--unseen_faces", write_faces(tmp_path / "unseen", PEOPLE[:1])]
    assert audit("--model_name_or_path", model, "--faces", faces, *extra) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hf-forget: error:") and "\n" not in err and "Traceback" not in err


def test_attacks_report_per_group_rates_and_aucs(clip_dir, tmp_path, capsys):
    faces = write_faces(tmp_path / "faces", PEOPLE[:2])
    unseen = write_faces(tmp_path / "unseen", PEOPLE[2:], seed=1)
    (tmp_path / "forgotten.txt").write_text(PEOPLE[0] + "\n", encoding="utf-8")
    output = tmp_path / "audit.json"
    args = ["--model_name_or_path", clip_dir, "--faces", faces, "--unseen_faces", unseen, "--attacks", "all",
            "--forgotten", f"@{tmp_path / 'forgotten.txt'}", "--output", output, "--redact"]
    assert audit(*args) == 0
    captured = capsys.readouterr()
    assert "attack suite" in captured.out and "membership_auc" in captured.out and "forgotten (n=1)" in captured.out
    data = json.loads(output.read_text())
    attacks = data["attacks"]
    assert list(attacks) == ["idia", "idia_top5", "rank_at_10", "membership_auc", "forget_set_auc_text",
                             "forget_set_auc_vision"]
    assert set(attacks["rank_at_10"]) == {"forgotten", "retained", "unseen"}
    assert attacks["membership_auc"] in (0.0, 1.0)  # one forgotten person against one never seen
    assert data["attack_details"]["num_persons"] == {"forgotten": 1, "retained": 1, "unseen": 1, "kept": 0}
    # the suite's IDIA is the plain audit's
    plain = tmp_path / "plain.json"
    assert audit("--model_name_or_path", clip_dir, "--faces", faces, "--unseen_faces", unseen, "--output", plain) == 0
    assert json.loads(plain.read_text())["idia"]["tpr"] == data["idia"]["tpr"]
    text = captured.out + captured.err + output.read_text()
    assert not any(part in text for name in PEOPLE for part in name.split())


def digest(folder) -> dict:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("where", ["model_config", "model_new_file", "faces", "names_file"])
def test_output_inside_an_input_is_refused_and_nothing_is_written(where, clip_dir, tmp_path, capsys):
    faces = write_faces(tmp_path / "faces", PEOPLE[:2])
    names = tmp_path / "names.txt"
    names.write_text(PEOPLE[0] + "\n", encoding="utf-8")
    output = {
        "model_config": clip_dir / "config.json",
        "model_new_file": clip_dir / "sub" / "audit.json",
        "faces": faces / PEOPLE[0] / "audit.json",
        "names_file": names,
    }[where]
    before = {**digest(clip_dir), **digest(tmp_path)}
    args = ["--model_name_or_path", clip_dir, "--faces", faces, "--output", output]
    if where == "names_file":
        args += ["--attacks", "all", "--forgotten", f"@{names}"]
    assert audit(*args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hf-forget: error: --output") and "inside the input" in err and "\n" not in err
    assert {**digest(clip_dir), **digest(tmp_path)} == before
    assert not (clip_dir / "sub").exists()


@pytest.mark.parametrize("problem", ["unknown_attack", "forgotten_without_attacks", "forgotten_unseen"])
def test_attack_option_errors_exit_2(problem, clip_dir, tmp_path, capsys):
    faces = write_faces(tmp_path / "faces", PEOPLE[:2])
    unseen = write_faces(tmp_path / "unseen", PEOPLE[2:], seed=1)
    extra = {
        "unknown_attack": ["--attacks", "idia,lira"],
        "forgotten_without_attacks": ["--forgotten", PEOPLE[0]],
        "forgotten_unseen": ["--attacks", "all", "--forgotten", PEOPLE[2]],
    }[problem]
    assert audit("--model_name_or_path", clip_dir, "--faces", faces, "--unseen_faces", unseen, *extra) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hf-forget: error:") and "\n" not in err and "Traceback" not in err


@pytest.mark.slow
def test_audit_of_the_toy_clip_matches_the_library_attack(tmp_path, capsys):
    """`hf-forget audit` on faces exported from the toy world gives the rates the demo's "before" audit gives."""
    from hf_forget.evaluation.idia import identity_inference_attack
    from hf_forget.toyworld import ToyWorld, load_toy_clip, toy_clip_path

    world = ToyWorld(seed=0)
    seen, unseen = world.seen_identities[:6], world.unseen_identities[:4]
    world.export_faces(tmp_path / "seen", seen, n_per_identity=20, seed=0)
    world.export_faces(tmp_path / "unseen", unseen, n_per_identity=20, seed=0)
    output = tmp_path / "audit.json"
    args = ["--model_name_or_path", toy_clip_path(), "--faces", tmp_path / "seen", "--unseen_faces", tmp_path / "unseen",
            "--device", "cpu"]  # where the library call below runs: exact votes need the same kernels
    assert main(["audit", *map(str, args), "--output", str(output)]) == 0
    audited = json.loads(output.read_text())["idia"]

    model, tokenizer, processor = load_toy_clip()
    faces = {p.name: world.face_images(p, 20, seed=0) for p in (*seen, *unseen)}
    direct = identity_inference_attack(model, tokenizer, processor, faces, unseen=[p.name for p in unseen])
    assert (audited["tpr"], audited["fpr"]) == (direct.tpr, direct.fpr)
    assert audited["tpr"] >= 0.8  # the shipped model knows its seen identities
    by_name = {p["name"]: p["recognised"] for p in audited["persons"]}
    assert by_name == {p.name: p.recognised for p in direct.persons}
