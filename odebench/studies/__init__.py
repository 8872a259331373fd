"""Training studies: the registry and the studies that reproduce published experiments.

``names()`` lists the studies, ``get(name)`` returns one (a `Study` instance), ``register(name)``
decorates a `Study` subclass in a file of your own to add it. Studies reuse the task, method and
solver registries: a newly registered method or solver is trainable at once.
"""

from __future__ import annotations

from odebench.registry import Registry
from odebench.studies.base import Data, Setup, Study
from odebench.studies.cnf_seminorm import CNFSeminorm, CNFSeminormFFJORD
from odebench.studies.damped_oscillators import OscillatorsANODE, OscillatorsNODE, OscillatorsSONODE
from odebench.studies.digits_classification import DigitsClassification
from odebench.studies.lorenz63_one_step import Lorenz63OneStep
from odebench.studies.nesterov import DigitsNesterov, DigitsNODE, OscillatorsNesterov
from odebench.studies.normalisation_depth import STUDIES as NORMALISATION_STUDIES
from odebench.studies.resnet_depth import ResNetRough, ResNetSmooth
from odebench.studies.three_body_masses import ThreeBodyMasses

registry: Registry[Study] = Registry("study")
for _study in (
    ThreeBodyMasses(),
    OscillatorsNODE(),
    OscillatorsANODE(),
    OscillatorsSONODE(),
    Lorenz63OneStep(),
    DigitsClassification(),
    CNFSeminorm(),
    CNFSeminormFFJORD(),
    OscillatorsNesterov(),
    DigitsNODE(),
    DigitsNesterov(),
    ResNetSmooth(),
    ResNetRough(),
    *NORMALISATION_STUDIES,
):
    registry.register(_study.name, _study)

names = registry.names
get = registry.get
register = registry.register

__all__ = ["Data", "Setup", "Study", "get", "names", "register", "registry"]
