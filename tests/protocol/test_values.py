"""Connection info, kernelspecs, request builders, the 4.x adapter and the lifecycle table."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from jupyter_client import adapter as jc_adapter
from jupyter_client.connect import write_connection_file
from jupyter_client.kernelspec import KernelSpecManager

from jupervisor.protocol import (
    TRANSITIONS,
    ConnectionInfo,
    ConnectionInfoError,
    IllegalTransition,
    KernelSpec,
    KernelSpecError,
    KernelState,
    LifecycleEvent,
    Session,
    adapt_to_v4,
    adapt_to_v5,
    complete_request,
    execute_request,
    history_request,
    inspect_request,
    next_state,
    shutdown_request,
)


def test_connection_info_round_trips_jupyter_client_files(tmp_path: Path) -> None:
    path, cfg = write_connection_file(str(tmp_path / "k.json"), ip="127.0.0.1", key=b"secret", kernel_name="python3")
    raw = json.loads(Path(path).read_text())
    raw["jupyter_session"] = "/home/u/nb.ipynb"
    info = ConnectionInfo.from_dict(raw, source=path)
    assert info.shell_port == cfg["shell_port"] and info.key == b"secret" and info.kernel_name == "python3"
    assert info.endpoint("iopub") == f"tcp://127.0.0.1:{cfg['iopub_port']}"
    assert info.to_dict() == raw  # extra keys survive
    assert "secret" not in repr(info)
    assert ConnectionInfo(transport="ipc", ip="/run/k", hb_port=5).endpoint("hb") == "ipc:///run/k-5"


@pytest.mark.parametrize(
    "patch, field",
    [({"shell_port": "x"}, "shell_port"), ({"hb_port": 70000}, "hb_port"), ({"transport": "udp"}, "transport"),
     ({"signature_scheme": "md5"}, "signature_scheme"), ({"key": 5}, "key")],
)
def test_bad_connection_info_names_the_file_and_key(patch: dict, field: str) -> None:
    good = {f"{c}_port": 1000 + i for i, c in enumerate(("shell", "iopub", "stdin", "control", "hb"))}
    with pytest.raises(ConnectionInfoError) as e:
        ConnectionInfo.from_dict({**good, **patch}, source="/tmp/kernel-x.json")
    assert "/tmp/kernel-x.json" in str(e.value) and field in str(e.value)
    with pytest.raises(ConnectionInfoError, match="not valid JSON"):
        ConnectionInfo.from_json("{", source="f.json")


def test_kernelspec_agrees_with_jupyter_client_on_the_installed_python3() -> None:
    jc = KernelSpecManager().get_kernel_spec("python3")
    ours = KernelSpec.from_json(Path(jc.resource_dir, "kernel.json").read_text(), name="python3", resource_dir=jc.resource_dir)
    assert list(ours.argv) == jc.argv or ours.launch_argv("cf")[0] == sys.executable
    assert ours.display_name == jc.display_name and ours.language == jc.language
    assert ours.interrupt_mode == jc.interrupt_mode and dict(ours.metadata) == jc.metadata
    argv = ours.launch_argv("/tmp/cf.json")
    assert argv[0] == sys.executable and "/tmp/cf.json" in argv


def test_kernelspec_templating_and_env() -> None:
    spec = KernelSpec.from_json(
        {"argv": ["run", "{resource_dir}/k", "-f", "{connection_file}", "{prefix}"], "env": {"P": "${HOME}:x", "Q": "${NOPE}"}},
        name="t", resource_dir="/res",
    )
    assert spec.launch_argv("/c.json", prefix="/pre") == ["run", "/res/k", "-f", "/c.json", "/pre"]
    env = spec.launch_env({"HOME": "/h"}, {"EXTRA": "1"})
    assert env["P"] == "/h:x" and env["Q"] == "${NOPE}" and env["EXTRA"] == "1"


@pytest.mark.parametrize(
    "doc, field",
    [("{", ""), ('{"argv": []}', "argv"), ('{"argv": ["x"], "display_name": 3}', "display_name"),
     ('{"argv": ["x"], "interrupt_mode": "poke"}', "interrupt_mode"), ('{"argv": ["x"], "env": {"A": 1}}', "env"),
     ("[1]", "")],
)
def test_malformed_kernelspec_names_the_file_and_field(doc: str, field: str) -> None:
    with pytest.raises(KernelSpecError) as e:
        KernelSpec.from_json(doc, name="bad", resource_dir="/k/bad")
    assert "/k/bad/kernel.json" in str(e.value)
    assert e.value.field == field
    assert isinstance(e.value, ValueError)


def test_request_builders_have_spec_defaults_and_check_arguments() -> None:
    ex = execute_request("1")
    assert ex.channel == "shell" and ex.content == {
        "code": "1", "silent": False, "store_history": True, "user_expressions": {}, "allow_stdin": True,
        "stop_on_error": True,
    }
    assert execute_request("1", silent=True).content["store_history"] is False
    assert complete_request("abc").content == {"code": "abc", "cursor_pos": 3}
    assert shutdown_request(restart=True).channel == "control"
    with pytest.raises(ValueError, match="detail_level"):
        inspect_request("x", detail_level=2)
    with pytest.raises(ValueError, match="hist_access_type"):
        history_request(hist_access_type="all")
    assert history_request(hist_access_type="tail", n=5).content["n"] == 5


def _v4(msg_type: str, content: dict):
    s = Session()
    m = s.message(msg_type, content)
    import attrs

    return attrs.evolve(m, header=attrs.evolve(m.header, version="4.1"))


@pytest.mark.parametrize(
    "msg_type, content",
    [
        ("pyout", {"execution_count": 1, "data": {"text/plain": "1"}, "metadata": {}}),
        ("pyerr", {"ename": "E", "evalue": "v", "traceback": []}),
        ("pyin", {"code": "1", "execution_count": 1}),
        ("stream", {"name": "stdout", "data": "hi"}),
        ("display_data", {"source": "x", "data": {"application/json": '{"a": 1}'}, "metadata": {}}),
        ("kernel_info_reply", {"protocol_version": [4, 1], "language": "python", "language_version": [3, 11], "ipython_version": [8, 0]}),
    ],
)
def test_v4_adaptation_matches_jupyter_client(msg_type: str, content: dict) -> None:
    m = _v4(msg_type, content)
    ours = adapt_to_v5(m)
    theirs = jc_adapter.adapt(
        {"header": m.header.to_dict() | {"version": "4.1"}, "parent_header": {}, "metadata": {}, "content": json.loads(json.dumps(content)),
         "msg_type": msg_type, "msg_id": m.msg_id}, 5,
    )
    assert ours.msg_type == theirs["header"]["msg_type"]
    for key in ("text", "data", "language_info", "protocol_version", "code", "ename"):
        if key in theirs["content"]:
            assert ours.content[key] == theirs["content"][key], key


def test_v5_requests_are_adapted_for_old_kernels() -> None:
    s = Session()
    m = adapt_to_v4(s.request(inspect_request("len")))
    assert m.msg_type == "object_info_request" and m.content["oname"] == "len" and m.header.version == "4.1"
    c = adapt_to_v4(s.request(complete_request("a = 1\nprin", 10))).content
    assert c["line"] == "prin" and c["cursor_pos"] == 4


def test_lifecycle_legal_pairs_and_every_illegal_pair_raises() -> None:
    assert next_state(KernelState.STARTING, LifecycleEvent.READY) is KernelState.IDLE
    assert next_state(KernelState.BUSY, LifecycleEvent.EXITED) is KernelState.DEAD
    assert next_state(KernelState.RESTARTING, LifecycleEvent.SPAWNED) is KernelState.STARTING
    assert next_state(KernelState.STOPPING, LifecycleEvent.STOPPED) is KernelState.DEAD
    for state in KernelState:
        for ev in LifecycleEvent:
            if (state, ev) in TRANSITIONS:
                assert next_state(state, ev) is TRANSITIONS[state, ev]
            else:
                with pytest.raises(IllegalTransition) as e:
                    next_state(state, ev)
                assert str(state) in str(e.value) and str(ev) in str(e.value)
    # a deliberately stopped kernel can never be restarted from STOPPING
    assert (KernelState.STOPPING, LifecycleEvent.RESTART) not in TRANSITIONS


def test_websocket_framings_match_jupyter_server() -> None:
    from jupyter_server.services.kernels.connection.base import deserialize_msg_from_ws_v1, serialize_msg_to_ws_v1

    from jupervisor.protocol import decode_json, decode_v1, encode_json, encode_v1, serialize_parts

    s = Session()
    msg = s.message("comm_msg", {"data": {"x": 1}}, buffers=[b"\x00\x01raw"])
    ours = encode_v1("shell", msg)
    channel, parts = deserialize_msg_from_ws_v1(ours)
    assert channel == "shell" and parts == [*serialize_parts(msg), b"\x00\x01raw"]
    theirs = serialize_msg_to_ws_v1([*serialize_parts(msg), b"\x00\x01raw"], "iopub")
    assert decode_v1(theirs) == ("iopub", msg)
    assert decode_json(encode_json("control", msg))[1].content == msg.content
    for bad in (b"", (7).to_bytes(8, "little"), (6).to_bytes(8, "little") + b"\xff" * 48):
        with pytest.raises(ValueError):
            decode_v1(bad)
