"""Zero-shot accuracy: the metric itself, class embeddings, and the three ways to pass labelled images."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from hf_forget.errors import ForgetInputError
from hf_forget.evaluation.idia import embed_prompts
from hf_forget.evaluation.zero_shot import IMAGENET_TEMPLATES, class_embeddings, topk_accuracy, zero_shot_accuracy
from hf_forget.testing import tiny_clip_model


def test_the_80_imagenet_templates():
    assert len(IMAGENET_TEMPLATES) == 80 and len(set(IMAGENET_TEMPLATES)) == 80
    assert all(t.count("{}") == 1 for t in IMAGENET_TEMPLATES)


def test_topk_accuracy():
    logits = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.5, 0.3], [0.1, 0.3, 0.6], [0.5, 0.4, 0.1]])
    labels = torch.tensor([0, 2, 2, 2])
    assert topk_accuracy(logits, labels, ks=(1, 2, 5)) == {1: 0.5, 2: 0.75, 5: 1.0}


@pytest.fixture(scope="module")
def tiny_clip():
    return tiny_clip_model()


def test_class_embedding_is_the_renormalised_mean_of_normalised_template_embeddings(tiny_clip):
    model, tokenizer, _ = tiny_clip
    templates = ["a photo of a {}.", "art of the {}."]
    classes = class_embeddings(model, tokenizer, ["cat", "dog"], templates)
    prompts = F.normalize(embed_prompts(model, tokenizer, ["a photo of a cat.", "art of the cat."]), dim=-1)
    torch.testing.assert_close(classes[0], F.normalize(prompts.mean(0), dim=0))
    torch.testing.assert_close(classes.norm(dim=-1), torch.ones(2))
    with pytest.raises(ForgetInputError, match="slot"):
        class_embeddings(model, tokenizer, ["cat"], ["no slot"])


def labelled(count_per_class=3, classes=3):
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)) for _ in range(count_per_class * classes)]
    return images, [i // count_per_class for i in range(len(images))], [f"class {i}" for i in range(classes)]


def test_list_folder_and_dataset_give_the_same_accuracy(tiny_clip, tmp_path):
    import datasets

    model, tokenizer, processor = tiny_clip
    images, labels, names = labelled()
    templates = IMAGENET_TEMPLATES[:4]
    from_list = zero_shot_accuracy(model, tokenizer, processor, images, labels, names, templates=templates)
    for index, (image, label) in enumerate(zip(images, labels)):
        folder = tmp_path / names[label]
        folder.mkdir(exist_ok=True)
        image.save(folder / f"{index}.png")
    from_folder = zero_shot_accuracy(model, tokenizer, processor, str(tmp_path), templates=templates)
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=names)})
    dataset = datasets.Dataset.from_dict({"image": images, "label": labels}, features=features)
    from_dataset = zero_shot_accuracy(model, tokenizer, processor, dataset, templates=templates)
    assert from_list == from_folder == from_dataset
    assert from_list.num_samples == 9 and from_list.num_classes == 3
    assert from_list.top5 == 1.0  # top-5 over 3 classes always holds
    assert 0.0 <= from_list.top1 <= 1.0


def test_zero_shot_rejects_bad_labels(tiny_clip):
    model, tokenizer, processor = tiny_clip
    images, labels, names = labelled()
    with pytest.raises(ForgetInputError, match="labels"):
        zero_shot_accuracy(model, tokenizer, processor, images, labels[:-1], names)
    with pytest.raises(ForgetInputError, match="index"):
        zero_shot_accuracy(model, tokenizer, processor, images, [5] * len(images), names)
