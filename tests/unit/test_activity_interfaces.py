"""Every activity a workflow calls through `activities.interfaces` is registered by the worker
under the same name with the same input and result types, and the worker registers nothing else."""

import inspect
import typing

import pytest
from temporalio import activity

from activities import interfaces
from worker import ACTIVITY_CLASSES


def definition(function) -> activity._Definition:
    return activity._Definition.must_from_callable(function)


INTERFACES = {definition(f).name: f for _, f in inspect.getmembers(interfaces, inspect.iscoroutinefunction)
              if hasattr(f, "__temporal_activity_definition")}
IMPLEMENTATIONS = {definition(method).name: method for cls in ACTIVITY_CLASSES
                   for _, method in inspect.getmembers(cls, inspect.isfunction)
                   if hasattr(method, "__temporal_activity_definition")}


def signature(function, skip_self: bool) -> tuple:
    hints = typing.get_type_hints(function)
    parameters = list(inspect.signature(function).parameters)[1 if skip_self else 0:]
    return tuple(hints.get(p) for p in parameters), hints.get("return")


def test_the_worker_registers_exactly_the_interfaces():
    assert len(INTERFACES) == 21
    assert set(IMPLEMENTATIONS) == set(INTERFACES)


@pytest.mark.parametrize("name", sorted(INTERFACES))
def test_each_implementation_has_the_interface_signature(name):
    assert signature(IMPLEMENTATIONS[name], skip_self=True) == signature(INTERFACES[name], skip_self=False)
