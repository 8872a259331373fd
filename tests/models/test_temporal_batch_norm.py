"""TA-BN normalises by the batch while training, splits each update between the two grid
neighbours by their interpolation weights, and interpolates its statistics when evaluating;
plain BN inside a field pools every time."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from odebench.models.conv import ConvStackField
from odebench.models.temporal_batch_norm import NORMS, TemporalBatchNorm, time_norm

X = torch.randn(16, 3, 4, 4, dtype=torch.float64) * 2 + 1


def at(t: float) -> torch.Tensor:
    return torch.tensor(t, dtype=torch.float64)


def test_on_a_grid_time_it_is_batch_norm_with_that_times_statistics():
    tabn, bn = TemporalBatchNorm(3, points=10), nn.BatchNorm2d(3, dtype=torch.float64)
    torch.testing.assert_close(tabn(at(0.3), X), bn(X), rtol=1e-13, atol=1e-13)
    torch.testing.assert_close(tabn.running_mean[3], bn.running_mean, rtol=1e-14, atol=0)
    torch.testing.assert_close(tabn.running_var[3], bn.running_var, rtol=1e-14, atol=0)
    assert torch.all(tabn.running_mean[[2, 4]] == 0)  # the neighbours have weight 0 here


def test_between_grid_times_the_update_is_split_by_the_interpolation_weights():
    tabn = TemporalBatchNorm(3, points=10, momentum=0.1)
    tabn(at(0.325), X)  # a quarter of the way from t*_3 = 0.3 to t*_4 = 0.4
    mean = X.mean(dim=(0, 2, 3))
    torch.testing.assert_close(tabn.running_mean[3], 0.1 * 0.75 * mean, rtol=1e-14, atol=0)
    torch.testing.assert_close(tabn.running_mean[4], 0.1 * 0.25 * mean, rtol=1e-14, atol=0)
    tabn.eval()
    with torch.no_grad():
        tabn.weight[4] = 3.0
    out = tabn(at(0.325), X)
    # Evaluation interpolates statistics, scale and shift with the same weights.
    stats = 0.75 * tabn.running_mean[3] + 0.25 * tabn.running_mean[4]
    var = 0.75 * tabn.running_var[3] + 0.25 * tabn.running_var[4]
    scale = (0.75 * 1.0 + 0.25 * 3.0) / torch.sqrt(var + tabn.eps)
    torch.testing.assert_close(out, (X - stats[None, :, None, None]) * scale[None, :, None, None])


def test_plain_batch_norm_pools_every_time_into_one_pair_of_statistics():
    bn = time_norm("bn", 3)
    bn(at(0.1), X)
    bn(at(0.9), X * 3)
    assert bn.running_mean.shape == (3,)
    with pytest.raises(ValueError, match="valid: none, bn, tabn"):
        time_norm("layer", 3)


@pytest.mark.parametrize("norm", NORMS)
def test_a_stacked_field_keeps_the_maps_shape_for_every_normalisation(norm):
    field = ConvStackField(3, 2, norm=norm, generator=torch.Generator().manual_seed(0))
    assert field(at(0.5), X).shape == X.shape
