"""Vector fields for Neural-ODE tasks."""

from odebench.models.augmented import OriginalDims, augment, augmented_mlp
from odebench.models.cnf import CNFField
from odebench.models.concatsquash import ConcatSquashMLP
from odebench.models.conv import ConvField, ConvStackField
from odebench.models.depth_indexed import DepthIndexedMLP
from odebench.models.mlp import MLP
from odebench.models.nesterov import NesterovCoordinates, NesterovField
from odebench.models.readout import fit_readout
from odebench.models.second_order import SecondOrderField
from odebench.models.temporal_batch_norm import TemporalBatchNorm, TimeInvariantBatchNorm

__all__ = [
    "MLP",
    "CNFField",
    "ConcatSquashMLP",
    "ConvField",
    "ConvStackField",
    "DepthIndexedMLP",
    "NesterovCoordinates",
    "NesterovField",
    "OriginalDims",
    "SecondOrderField",
    "TemporalBatchNorm",
    "TimeInvariantBatchNorm",
    "augment",
    "augmented_mlp",
    "fit_readout",
]
