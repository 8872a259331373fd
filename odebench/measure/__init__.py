"""Measurements shared by every gradient method: evaluation counts, time and peak memory."""

from odebench.measure.nfe import CountedField, EvaluationCounts

__all__ = ["CountedField", "EvaluationCounts"]
