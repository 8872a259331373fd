"""Measurements shared by every gradient method: evaluation counts, time and peak memory."""

from odebench.measure.memory import PeakMemory, backend_for, measure_peak, track_peak
from odebench.measure.nfe import CountedField, EvaluationCounts
from odebench.measure.timing import PhaseTiming, TimingStats, time_forward_backward

__all__ = [
    "CountedField",
    "EvaluationCounts",
    "PeakMemory",
    "PhaseTiming",
    "TimingStats",
    "backend_for",
    "measure_peak",
    "time_forward_backward",
    "track_peak",
]
