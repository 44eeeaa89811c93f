"""Networks: shapes for any size, instance vs batch norm, config round trip, strict loading."""
import json

import pytest
import torch
import torch.nn.functional as F

from fastnst.errors import InvalidOptionError, WeightsMismatchError
from fastnst.models import TextureNet, TransformerNet, build_model, load_network
from fastnst.models.transformer_net import last_conv, upsample_conv

SIZES = [(1, 1), (5, 7), (17, 33), (31, 30), (64, 48)]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("make", [
    lambda: TransformerNet(width=0.25, residual_blocks=1),
    lambda: TransformerNet(width=0.25, residual_blocks=1, norm="batch"),
    lambda: TextureNet(scales=3, channels=4),
    lambda: TextureNet(scales=4, channels=4, texture_only=True),
], ids=["transformer-in", "transformer-bn", "texture", "texture-only"])
def test_output_shape_and_range_for_any_size(make, size):
    net = make().eval()
    with torch.no_grad():
        y = net(torch.rand(2, 3, *size))
    assert y.shape == (2, 3, *size)
    assert torch.isfinite(y).all() and y.min() >= 0 and y.max() <= 1


@pytest.mark.parametrize("size", [(4, 4), (6, 10), (14, 8)])  # even: the network only gives last_conv even sizes
def test_inference_layers_equal_the_textbook_layers(size):
    torch.manual_seed(0)
    x = torch.randn(2, 8, *size)
    up = torch.nn.Conv2d(8, 5, 3)
    textbook = up(F.pad(F.interpolate(x, scale_factor=2, mode="nearest"), (1, 1, 1, 1), mode="reflect"))
    torch.testing.assert_close(upsample_conv(x, up), textbook, rtol=0, atol=1e-5)
    padded, last = F.pad(x, (4, 4, 4, 4)), torch.nn.Conv2d(8, 3, 9)
    torch.testing.assert_close(last_conv(padded, last), last(padded), rtol=0, atol=1e-5)


@pytest.mark.parametrize("size", [(5, 7), (40, 36)])
def test_eval_mode_network_equals_its_training_form(size):
    """Instance norm keeps no running statistics, so train and eval differ only in the decoder's form."""
    torch.manual_seed(0)
    net = TransformerNet(width=0.5, residual_blocks=2)
    for m in net.modules():  # non-trivial affine parameters, as after training
        if isinstance(m, torch.nn.InstanceNorm2d):
            torch.nn.init.normal_(m.weight, 1, 0.3), torch.nn.init.normal_(m.bias, 0, 0.3)
    x = torch.rand(2, 3, *size)
    with torch.no_grad():
        torch.testing.assert_close(net.eval()(x), net.train()(x), rtol=0, atol=1e-5)


def test_width_and_depth_change_the_network():
    full, light = TransformerNet(), TransformerNet(width=0.5)
    params = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert params(light) < params(full) / 3  # conv params scale with width²
    assert len(TransformerNet(residual_blocks=2).residuals) == 2
    assert full.encoder[0][1].out_channels == 32 and light.encoder[0][1].out_channels == 16


def test_instance_norm_output_is_independent_of_the_batch():
    torch.manual_seed(0)
    photo, others = torch.rand(1, 3, 32, 32), torch.rand(3, 3, 32, 32)
    net = TransformerNet(width=0.25, residual_blocks=1)
    net.train()  # the same in train and eval mode: IN keeps no running statistics
    with torch.no_grad():
        alone = net(photo)
        batched = net(torch.cat([photo, others]))[:1]
    assert torch.allclose(alone, batched, atol=1e-6)


def test_batch_norm_output_depends_on_the_batch_in_training():
    torch.manual_seed(0)
    photo, others = torch.rand(1, 3, 32, 32), torch.rand(3, 3, 32, 32)
    net = TransformerNet(width=0.25, residual_blocks=1, norm="batch").train()
    with torch.no_grad():
        alone = net(torch.cat([photo, photo]))[:1]
        batched = net(torch.cat([photo, others]))[:1]
    assert (alone - batched).abs().max() > 1e-3


def test_texture_net_noise_makes_different_textures():
    net = TextureNet(scales=3, channels=4, texture_only=True).eval()
    x = torch.zeros(1, 3, 32, 32)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)
    with torch.no_grad():
        a, b, a2 = net(x, generator=g1), net(x, generator=g2), net(x, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, a2) and (a - b).abs().max() > 1e-4


@pytest.mark.parametrize("net", [TransformerNet(width=0.25, residual_blocks=2, norm="batch"),
                                 TextureNet(scales=3, channels=4, texture_only=True)])
def test_save_and_load_round_trip_through_config(tmp_path, net):
    net.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["arch"] == net.arch
    again = type(net).from_pretrained(tmp_path)
    rebuilt = build_model(config)
    assert type(rebuilt) is type(net)
    for a, b in zip(net.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    assert not again.training


def test_mismatched_weights_are_rejected_with_the_file_named(tmp_path):
    TransformerNet(width=0.5, residual_blocks=1).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["width"] = 0.25  # the file's tensors are now the wrong shape
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(WeightsMismatchError, match=r"model\.safetensors.*wrong shape"):
        TransformerNet.from_pretrained(tmp_path)
    config.update(width=0.5, residual_blocks=2)  # the file now lacks a residual block
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(WeightsMismatchError, match="missing"):
        TransformerNet.from_pretrained(tmp_path)


def test_a_config_of_an_earlier_version_still_loads(tmp_path):
    """config.json written when residual_blocks was called num_residual_blocks (the gallery's, the Hub's)."""
    net = TransformerNet(width=0.25, residual_blocks=2).eval()
    net.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["num_residual_blocks"] = config.pop("residual_blocks")
    (tmp_path / "config.json").write_text(json.dumps(config))
    for again in (TransformerNet.from_pretrained(tmp_path), load_network(tmp_path)):
        assert again.residual_blocks == 2
        assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), again.state_dict().values()))


def test_unknown_architecture_is_a_clear_error():
    with pytest.raises(WeightsMismatchError, match="Unknown network architecture"):
        build_model({"arch": "unet"})
    with pytest.raises(WeightsMismatchError, match="valid transformer"):
        build_model({"arch": "transformer", "norm": "layer"})


def test_a_family_paints_each_style_as_its_standalone_network_and_mixes_them():
    """Conditional instance norm (Dumoulin et al. 2017): style k of a family = a plain network holding row k."""
    torch.manual_seed(0)
    family = TransformerNet(width=0.25, residual_blocks=1, styles=["a", "b", "c"])
    for name, p in family.named_parameters():
        if p.ndim == 2:  # the (styles, channels) scale/shift rows: make the styles differ
            p.data.normal_()
    family.eval()
    x = torch.rand(2, 3, 30, 42)
    with torch.no_grad():
        outputs = [family(x, k) for k in range(3)]
        for k in range(3):
            assert torch.allclose(family.style_network(k).eval()(x), outputs[k], atol=1e-6)
        assert not torch.allclose(outputs[0], outputs[1], atol=1e-3)
        assert torch.allclose(family(x, torch.tensor([0.0, 1.0, 0.0])), outputs[1], atol=1e-6)  # one-hot weights
        per_image = family(x, torch.tensor([2, 0]))
        assert torch.allclose(per_image[0], outputs[2][0], atol=1e-6) and torch.allclose(per_image[1], outputs[0][1],
                                                                                         atol=1e-6)
    with pytest.raises(InvalidOptionError, match="3 styles"):
        family(x)
    with pytest.raises(InvalidOptionError, match="out of range"):
        family(x, 3)
    with pytest.raises(InvalidOptionError, match="instance"):
        TransformerNet(norm="batch", styles=["a", "b"])
