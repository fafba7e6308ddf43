"""Every backend in the registry implements the one protocol (optimizer/backends/base.py), and
refuses with a reason a problem it cannot hold."""

from __future__ import annotations

import inspect

import pytest

import marginopt
from marginopt.errors import OptimizationError
from marginopt.optimizer.backends import BACKENDS, backend_class, build_backend
from marginopt.optimizer.backends.base import Backend
from marginopt.optimizer.description import Mode, describe


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_a_registered_backend_implements_the_protocol(name: str) -> None:
    cls = backend_class(name)
    assert cls.name == name
    assert cls.fallback is None or cls.fallback in BACKENDS
    for method in ("why_not", "solve", "update"):
        assert callable(getattr(cls, method, None)), f"{name} lacks {method}"
    protocol = {m for m, v in vars(Backend).items() if (callable(v) or isinstance(v, classmethod)) and not m.startswith("_")}
    assert protocol == {"why_not", "solve", "update"}
    assert list(inspect.signature(cls.solve).parameters) == ["self", "request"]


def test_each_backend_takes_the_demo_or_says_why_not() -> None:
    """The demo optimizes hedges and collateral under min_cost: the cvxpy program and generation
    take it; the direct LP (collateral only) and the scenario solver (min_margin hedges) do not."""
    demo = describe(marginopt.load_case(marginopt.demo_case_path()))
    assert backend_class("cvxpy").why_not(demo) is None
    assert backend_class("generate").why_not(demo) is None
    assert "hedges are traded" in backend_class("direct").why_not(demo)
    assert "min_cost" in backend_class("scenario").why_not(demo)
    with pytest.raises(OptimizationError, match="direct backend cannot solve this problem: hedges are traded"):
        build_backend("direct", demo)
    allocate = describe(marginopt.load_case(marginopt.demo_case_path()), mode=Mode.ALLOCATE)
    assert backend_class("direct").why_not(allocate) is None


def test_an_unknown_backend_is_named() -> None:
    with pytest.raises(OptimizationError, match="backend 'simplex': expected one of"):
        backend_class("simplex")
