"""Vector fields for Neural-ODE tasks."""

from odebench.models.augmented import OriginalDims, augment, augmented_mlp
from odebench.models.cnf import CNFField
from odebench.models.concatsquash import ConcatSquashMLP
from odebench.models.conv import ConvField
from odebench.models.mlp import MLP
from odebench.models.readout import fit_readout
from odebench.models.second_order import SecondOrderField

__all__ = [
    "MLP",
    "CNFField",
    "ConcatSquashMLP",
    "ConvField",
    "OriginalDims",
    "SecondOrderField",
    "augment",
    "augmented_mlp",
    "fit_readout",
]
