"""The public names: each resolves, and the package exports each once."""

from __future__ import annotations

import jupervisor
import jupervisor.actors
import jupervisor.protocol


def test_every_public_name_resolves() -> None:
    for name in jupervisor.__all__:
        assert getattr(jupervisor, name) is not None, name
    assert set(jupervisor.__all__) <= set(dir(jupervisor))


def test_unknown_names_raise_attribute_error() -> None:
    try:
        jupervisor.no_such_thing  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_subpackages_export_their_core() -> None:
    assert jupervisor.protocol.Session and jupervisor.protocol.decode
    assert jupervisor.actors.run_kernel and jupervisor.actors.run_restarter
