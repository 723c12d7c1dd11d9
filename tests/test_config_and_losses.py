
import pytest
import torch

from hf_forget import ForgetInputError, TextForgetConfig, VisionForgetConfig
from hf_forget.config import parse_names
from hf_forget.losses import backdoor_loss, hidden_cosine, identity_residual, preservation_loss, weight_anchor


def test_reference_defaults(tmp_path):
    text = TextForgetConfig(output_dir=str(tmp_path))
    assert (text.learning_rate, text.max_steps, text.per_device_train_batch_size) == (1e-4, 400, 128)
    assert (text.lr_milestones, text.lr_gamma, text.alpha, text.beta) == ([200, 300], 0.5, 0.6, 0.01)
    assert text.neutral_term == "a person" and text.embedding == "both" and text.freeze_norm_layers
    vision = VisionForgetConfig(output_dir=str(tmp_path))
    assert (vision.max_steps, vision.lr_milestones, vision.lr_gamma, vision.alpha, vision.beta) == (
        100, [25, 50], 0.1, 0.8, 0.005
    )


@pytest.mark.parametrize(
    "config_class, option, value",
    [(TextForgetConfig, "short_trigger_fraction", 0.25), (VisionForgetConfig, "face_only_fraction", 1.0)],
)
def test_sample_fractions_default_to_the_paper_and_are_checked(tmp_path, config_class, option, value):
    assert getattr(config_class(output_dir=str(tmp_path)), option) == 0.0
    assert getattr(config_class(output_dir=str(tmp_path), **{option: value}), option) == value
    for bad in (-0.1, 1.5):
        with pytest.raises(ForgetInputError, match=option):
            config_class(output_dir=str(tmp_path), **{option: bad})


def test_names_from_file(tmp_path):
    path = tmp_path / "names.txt"
    path.write_text("Ann Example\n\n# a comment\nBo Example\n", encoding="utf-8")
    assert parse_names([f"@{path}", "Cy Example, Di Example"]) == ["Ann Example", "Bo Example", "Cy Example", "Di Example"]
    with pytest.raises(ForgetInputError, match="does not exist"):
        parse_names(["@/nonexistent/names.txt"])


def test_weight_anchor_is_unsquared_per_tensor_and_summed():
    deltas = [torch.tensor([3.0, 4.0]), torch.tensor([[0.0, 0.0], [5.0, 12.0]])]
    assert weight_anchor(deltas).item() == pytest.approx(5.0 + 13.0)
    start = torch.zeros(4, requires_grad=True)
    weight_anchor([start]).backward()
    assert torch.equal(start.grad, torch.zeros(4))  # well defined at the first step


def test_losses_are_negative_mean_cosines():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert preservation_loss(a, b).item() == pytest.approx(-0.5)
    assert backdoor_loss(a, a).item() == pytest.approx(-1.0)
    states = torch.randn(2, 5, 3)
    assert torch.allclose(hidden_cosine(states, states), torch.ones(2))


def test_identity_residual_is_the_component_along_the_teachers_residual():
    target = torch.tensor([[1.0, 0.0, 0.0]])
    teacher = torch.tensor([[1.0, 1.0, 0.0]])  # the trigger added the second axis
    # at the target: nothing left; along the teacher's way: positive; orthogonal to it or opposite: <= 0
    assert identity_residual(target, target, teacher).item() == pytest.approx(0.0)
    assert identity_residual(teacher, target, teacher).item() > 0.5
    assert identity_residual(torch.tensor([[1.0, 0.0, 1.0]]), target, teacher).item() == pytest.approx(0.0, abs=1e-6)
    assert identity_residual(torch.tensor([[1.0, -1.0, 0.0]]), target, teacher).item() < -0.5
    # (batch, seq, dim) states: per position, averaged over positions; scale-free like the cosines
    states = torch.stack([teacher, target], dim=1)  # position 0 keeps the teacher's residual, position 1 has none
    expected = identity_residual(teacher, target, teacher) / 2
    assert identity_residual(3 * states, torch.stack([target, target], 1), torch.stack([teacher, teacher], 1)).item() == \
        pytest.approx(expected.item())


def test_identity_residual_weight_is_checked(tmp_path):
    assert TextForgetConfig(output_dir=str(tmp_path)).identity_residual_weight == 0.0
    with pytest.raises(ForgetInputError, match="identity_residual_weight"):
        TextForgetConfig(output_dir=str(tmp_path), identity_residual_weight=-1)
