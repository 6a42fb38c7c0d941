"""T2T-ViT-t-14: size against the paper, token counts, forward/backward, and a tiny model learns."""
from __future__ import annotations

import pytest
import torch

from cnnvit.models.t2t_vit import T2TViT, t2t_vit_t_14

PAPER_PARAMS = 21.5e6  # Yuan et al. 2021, Table 2, T2T-ViT_t-14


def _n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def model_224() -> T2TViT:
    torch.manual_seed(0)
    return t2t_vit_t_14(num_classes=1000, img_size=224).eval()


def test_parameter_count_matches_paper(model_224):
    n = _n_params(model_224)
    print(f"t2t_vit_t_14 @224, 1000 classes: {n:,} parameters")
    assert abs(n - PAPER_PARAMS) / PAPER_PARAMS < 0.02
    # The position table is fixed, not learned
    assert not any(name == "pos_embed" for name, _ in model_224.named_parameters())
    assert model_224.pos_embed.shape == (1, 197, 384)


def test_token_count_224(model_224):
    with torch.no_grad():
        tokens = model_224.tokens_to_token(torch.randn(1, 3, 224, 224))
    assert tokens.shape == (1, 196, 384)


def test_forward_backward_64px_200_classes():
    torch.manual_seed(0)
    model = t2t_vit_t_14(num_classes=200, img_size=64, drop_path_rate=0.1)
    x = torch.randn(2, 3, 64, 64)
    assert model.tokens_to_token(x).shape == (2, 16, 384)
    assert model.forward_features(x).shape == (2, 17, 384)  # 16 tokens + cls
    out = model(x)
    assert out.shape == (2, 200)
    out.logsumexp(dim=1).sum().backward()
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, name
            assert torch.isfinite(p.grad).all(), name


@pytest.mark.parametrize("size", [60, 0, 8])
def test_img_size_not_multiple_of_16_raises(size):
    with pytest.raises(ValueError, match="multiple of 16"):
        t2t_vit_t_14(num_classes=10, img_size=size)


def test_wrong_input_size_raises():
    model = T2TViT(img_size=32, num_classes=3, embed_dim=16, depth=1, num_heads=2, token_dim=8)
    with pytest.raises(ValueError, match="expected 32x32"):
        model(torch.randn(1, 3, 48, 48))


def test_tiny_model_trains():
    torch.manual_seed(0)
    model = T2TViT(img_size=32, num_classes=4, embed_dim=32, depth=2, num_heads=2,
                   mlp_ratio=2.0, token_dim=8)
    # Init is trunc-normal(.02), so logits start near zero; a few steps at 3e-3 escape that plateau
    x, y = torch.randn(8, 3, 32, 32), torch.arange(8) % 4
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(15):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]
