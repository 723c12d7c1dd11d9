import gzip
import json
import os
import pickle
import unicodedata

import pytest
import torch
from safetensors.torch import save_file

from hf_forget.errors import ForgetInputError
from hf_forget.publish.leak_guard import NameLeakError, NamePatterns, find_leaks, scan_tree, text_contains_names

NAMES = ["José Ñúñez", "Li Wei"]


@pytest.mark.parametrize(
    "text",
    [
        "a photo of José Ñúñez",
        "a photo of JOSÉ ÑÚÑEZ",
        unicodedata.normalize("NFD", "josé ñúñez at a gala"),
        "Jose Nunez, accents stripped",
        "jose_nunez.jpg",
        "JoseNunez",
        "ＪＯＳＥ　ＮＵＮＥＺ",  # full-width compatibility forms (NFKC folds them)
        '{"name": "Jos\\u00e9 \\u00d1\\u00fa\\u00f1ez"}',  # json.dumps(ensure_ascii=True)
        "/faces/Jos%C3%A9%20Nunez/1.png",
        "li-wei",
    ],
)
def test_names_are_found_in_any_case_and_unicode_form(text):
    assert text_contains_names(text, NAMES)


@pytest.mark.parametrize("text", ["a photo of a person", "Jose", "lineage weights", "Olivia Weiss"])
def test_clean_text_is_not_flagged(text):
    assert not text_contains_names(text, NAMES)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16-le", "utf-16-be", "utf-16", "latin-1"])
def test_names_are_found_in_any_byte_encoding(encoding):
    data = b"\x01\x02header " + "log line: José Ñúñez done".encode(encoding) + b"\xff"
    assert NamePatterns.from_names(NAMES).search_bytes(data)
    assert NamePatterns.from_names(NAMES).search_bytes(b"\x00" + data)  # the other UTF-16 alignment


def _plant(tmp_path, relative, write):
    path = tmp_path / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    write(path)
    return path


@pytest.mark.parametrize(
    "relative,write",
    [
        ("trainer_state.json", lambda p: p.write_text(json.dumps({"log_history": [{"names": ["Li Wei"]}]}))),
        ("notes.md", lambda p: p.write_text("forgot LI WEI\n", encoding="utf-8")),
        ("config.yaml", lambda p: p.write_text("names:\n  - jos\u00e9 \u00f1\u00fa\u00f1ez\n")),
        ("logs/run.log", lambda p: p.write_bytes("Li Wei".encode("utf-16"))),
        ("optimizer.pt", lambda p: torch.save({"state": {}, "note": "Li Wei"}, p)),
        ("rng_state.pth", lambda p: p.write_bytes(pickle.dumps({"who": "José Ñúñez"}, protocol=0))),
        ("args.pkl", lambda p: p.write_bytes(pickle.dumps({"who": "José Ñúñez"}, protocol=5))),
        ("logs/events.log.gz", lambda p: p.write_bytes(gzip.compress("step 3: li wei".encode()))),
        (
            "model.safetensors",
            lambda p: save_file({"w": torch.zeros(2)}, str(p), metadata={"forgotten": "Jose Nunez"}),
        ),
    ],
)
def test_a_planted_name_is_found_and_the_file_named(tmp_path, relative, write):
    _plant(tmp_path, "config.json", lambda p: p.write_text('{"hidden_size": 32}'))
    _plant(tmp_path, relative, write)
    assert find_leaks(tmp_path, NAMES) == [relative]
    with pytest.raises(NameLeakError) as error:
        scan_tree(tmp_path, NAMES)
    assert relative in str(error.value)
    assert isinstance(error.value, ForgetInputError)  # the CLI turns it into one line and exit 2
    assert not text_contains_names(str(error.value), NAMES)  # the refusal does not repeat the name


def test_a_name_in_a_path_is_refused_without_repeating_the_path(tmp_path):
    _plant(tmp_path, "faces/li_wei/0.txt", lambda p: p.write_text("clean"))
    with pytest.raises(NameLeakError) as error:
        scan_tree(tmp_path, NAMES)
    assert "faces/" in str(error.value) and "wei" not in str(error.value).casefold()


def test_tensor_data_is_not_mistaken_for_text_and_clean_trees_pass(tmp_path):
    torch.manual_seed(0)
    torch.save({"weight": torch.randn(50_000)}, tmp_path / "pytorch_model.bin")
    save_file({"weight": torch.randn(50_000)}, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    (tmp_path / "README.md").write_text("This model forgot 2 identities.")
    scan_tree(tmp_path, NAMES)  # does not raise
    with pytest.raises(NameLeakError, match="the repo id"):
        scan_tree(tmp_path, NAMES, extra_texts={"the repo id": "me/forgot-li-wei"})


def test_names_must_be_strings():
    with pytest.raises(ForgetInputError):
        NamePatterns.from_names([b"bytes"])


def test_links_are_never_followed_and_special_files_never_read(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("Li Wei")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "loop").symlink_to(tree)  # a loop: must not be walked
    (tree / "notes.txt").symlink_to(outside / "secret.txt")  # content outside the tree: not read
    os.mkfifo(tree / "pipe")  # opening it would block the scan
    assert find_leaks(tree, NAMES) == []
    (tree / "photo.png").symlink_to(outside / "li_wei.png")  # the target's path carries a name
    assert find_leaks(tree, NAMES) == ["photo.png"]
