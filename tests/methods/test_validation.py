"""Bad input is refused with one line that says what is valid; the registry refuses duplicates."""

from __future__ import annotations

from importlib.metadata import version

import pytest
import torch

from odebench import methods
from odebench.errors import InvalidInputError, ToleranceWarning, UnknownNameError, UnsupportedError
from odebench.methods.aca import ACA
from odebench.registry import Registry
from tests.methods.fields import SpiralField

Y0 = torch.tensor([[1.0, 0.0]], dtype=torch.float64)
T = torch.tensor([0.0, 1.0], dtype=torch.float64)


def one_line(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def test_unknown_method_lists_valid_names():
    with pytest.raises(UnknownNameError) as excinfo:
        methods.get("adjiont")
    message = one_line(excinfo)
    assert "adjiont" in message and all(name in message for name in methods.CORE)


@pytest.mark.parametrize("method", methods.CORE)
def test_unknown_solver_lists_valid_names(method):
    with pytest.raises(UnknownNameError) as excinfo:
        methods.get(method).odeint(SpiralField(), Y0, T, solver="dopri7")
    assert "dopri5" in one_line(excinfo)


@pytest.mark.parametrize("method", methods.CORE)
@pytest.mark.parametrize(
    "t, fragment",
    [
        (torch.tensor([0.0, 1.0, 0.5], dtype=torch.float64), "strictly increasing"),
        (torch.tensor([0.0, 0.0], dtype=torch.float64), "strictly increasing"),
        (torch.tensor([[0.0, 1.0]], dtype=torch.float64), "one-dimensional"),
        (torch.tensor([0.0, 1.0], dtype=torch.float32), "dtype"),
        (torch.tensor([0.0, 1.0], dtype=torch.float64, device="meta"), "device"),
    ],
)
def test_bad_times_are_refused(method, t, fragment):
    with pytest.raises(InvalidInputError) as excinfo:
        methods.get(method).odeint(SpiralField(), Y0, t)
    assert fragment in one_line(excinfo)


def test_parameter_dtype_mismatch_is_refused():
    with pytest.raises(InvalidInputError, match="parameter A has dtype"):
        methods.get("aca").odeint(SpiralField(dtype=torch.float32), Y0, T)


@pytest.mark.parametrize("rtol, atol", [(0.0, 0.0), (-1e-6, 1e-8), (float("nan"), 1e-8)])
def test_impossible_tolerances_are_refused(rtol, atol):
    with pytest.raises(InvalidInputError) as excinfo:
        methods.get("naive").odeint(SpiralField(), Y0, T, rtol=rtol, atol=atol)
    assert "rtol" in one_line(excinfo)


def test_a_tolerance_below_the_dtypes_epsilon_warns_and_solves():
    """torchdiffeq accepts it and papers use it (ACA: float32 at 1e-7): what the solver does with it
    is a finding, not an input error."""
    with pytest.warns(ToleranceWarning, match="below the machine epsilon of torch.float64"):
        y = methods.get("naive").odeint(SpiralField(), Y0, T, rtol=1e-17, atol=1e-12)
    assert torch.isfinite(y).all()


def test_an_absolute_tolerance_alone_is_rtol_zero():
    y = methods.get("aca").odeint(SpiralField(), Y0, T, rtol=0.0, atol=1e-8)
    assert torch.isfinite(y).all()


def test_unsupported_pair_is_refused():
    with pytest.raises(UnsupportedError) as excinfo:
        methods.get("seminorm").odeint(SpiralField(), Y0, T, solver="rk4", options={"step_size": 0.1})
    assert "dopri5" in one_line(excinfo)


def test_native_method_refuses_unknown_option():
    with pytest.raises(UnsupportedError) as excinfo:
        methods.get("symplectic").odeint(SpiralField(), Y0, T, options={"jump_t": [0.5]})
    assert "max_num_steps" in one_line(excinfo)


def test_native_method_refuses_time_gradient():
    with pytest.raises(UnsupportedError, match="detach t"):
        methods.get("aca").odeint(SpiralField(), Y0, T.clone().requires_grad_(True))


def test_registry_refuses_duplicates_and_supports_decorator():
    registry = Registry("method")
    registry.register("aca", ACA())
    with pytest.raises(ValueError, match="already registered"):
        registry.register("aca", ACA())

    @registry.register("mine")
    class Mine(ACA):
        pass

    assert isinstance(registry.get("mine"), Mine)
    assert registry.names() == ["aca", "mine"]


#: The core methods' backends and the venue of the paper each implements (README's table).
CORE_BACKEND_AND_PAPER = {
    "naive": ("torchdiffeq", "NeurIPS 2018"),
    "adjoint": ("torchdiffeq", "NeurIPS 2018"),
    "seminorm": ("torchdiffeq", "ICML 2021"),
    "aca": ("odebench", "ICML 2020"),
    "symplectic": ("odebench", "NeurIPS 2021"),
}


def test_core_methods_are_registered_with_capabilities():
    assert set(methods.CORE) == set(CORE_BACKEND_AND_PAPER) and set(methods.CORE) <= set(methods.names())
    for name, (backend, venue) in CORE_BACKEND_AND_PAPER.items():
        method = methods.get(name)
        assert method.capabilities.backend == backend and venue in method.capabilities.paper
        assert method.backend_version == version(backend)
