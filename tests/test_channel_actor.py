"""Channel actors against real ZeroMQ peers owned by the test (real sockets, real bytes)."""

from __future__ import annotations

import math
import threading

import pytest
import trio
import zmq

from jupervisor.actors import ChannelConfig, Incoming, Send, SocketOwner, Subscribe, Watch, new_context, run_channel
from jupervisor.protocol import Session, Signer, encode

KEY = b"test-key"


def _endpoint(sock: zmq.Socket) -> str:
    return sock.getsockopt(zmq.LAST_ENDPOINT).decode()


async def test_flood_while_the_owner_sends_never_stalls() -> None:
    """A ROUTER peer floods the DEALER actor while the actor sends: no lost wake-up."""
    n_in, n_out = 5000, 2000
    ctx = new_context()
    router = ctx.socket(zmq.ROUTER)
    router.bind("tcp://127.0.0.1:*")
    signer = Signer(KEY)
    peer_session = Session()
    got_by_peer: list[bytes] = []
    identity = b"client-1"

    def peer() -> None:
        # wait for the client's first message to learn it is connected, then flood it
        frames = router.recv_multipart()
        got_by_peer.append(frames[-1])
        for i in range(n_in):
            msg = peer_session.message("stream", {"name": "stdout", "text": str(i)})
            router.send_multipart(encode(msg, signer, [identity]))
        while len(got_by_peer) < n_out:
            got_by_peer.append(router.recv_multipart()[-1])

    thread = threading.Thread(target=peer, daemon=True)
    try:
        async with trio.open_nursery() as nursery:
            cfg = ChannelConfig(name="shell", endpoint=_endpoint(router), signer=signer, identity=identity)
            handle = await nursery.start(run_channel, cfg, ctx)
            send, receive = trio.open_memory_channel(math.inf)
            handle.mailbox.post(Subscribe(send))
            thread.start()
            me = Session()
            with trio.fail_after(30):
                for i in range(n_out):
                    handle.mailbox.post(Send(me.message("comm_msg", {"i": i})))
                    if i % 100 == 0:
                        await trio.sleep(0)
                texts = []
                async for item in receive:
                    texts.append(item.message.content["text"])
                    if len(texts) == n_in:
                        break
                await trio.to_thread.run_sync(thread.join)
            nursery.cancel_scope.cancel()
    finally:
        router.close(0)
        ctx.destroy(0)
    assert texts == [str(i) for i in range(n_in)]
    assert len(got_by_peer) == n_out
    assert handle.stats.received == n_in and handle.stats.sent == n_out


async def test_forged_malformed_and_replayed_messages_are_dropped_and_counted(caplog) -> None:
    ctx = new_context()
    pub = ctx.socket(zmq.XPUB)
    pub.bind("tcp://127.0.0.1:*")
    signer = Signer(KEY)
    forger = Signer(b"wrong-key")
    kernel = Session()
    try:
        async with trio.open_nursery() as nursery:
            cfg = ChannelConfig(name="iopub", endpoint=_endpoint(pub), signer=signer, kernel_id="k1")
            handle = await nursery.start(run_channel, cfg, ctx)
            send, receive = trio.open_memory_channel(math.inf)
            handle.mailbox.post(Subscribe(send))
            with trio.fail_after(10):
                # XPUB tells us when the subscription arrived; then a welcome, as 5.5 kernels send
                while True:
                    try:
                        sub = pub.recv(zmq.NOBLOCK)
                        break
                    except zmq.Again:
                        await trio.sleep(0.01)
                assert sub == b"\x01"
                good = kernel.message("iopub_welcome", {"subscription": ""})
                pub.send_multipart(encode(good, signer, [b"welcome"]))
                forged = encode(kernel.message("stream", {"name": "stdout", "text": "forged"}), forger)
                pub.send_multipart(forged)
                pub.send_multipart([b"<IDS|MSG>", b"sig", b"{}"])  # truncated
                pub.send_multipart([b"no delimiter at all"])
                valid = encode(kernel.message("stream", {"name": "stdout", "text": "real"}), signer)
                pub.send_multipart(valid)
                pub.send_multipart(valid)  # replayed
                bad_json = encode(kernel.message("status", {}), signer)
                bad_json[-1] = b"{not json"
                bad_json[1] = signer.sign(bad_json[2:6])
                pub.send_multipart(bad_json)
                last = kernel.message("status", {"execution_state": "idle"})
                pub.send_multipart(encode(last, signer))
                seen = []
                async for item in receive:
                    assert isinstance(item, Incoming)
                    seen.append(item.message.msg_type)
                    if item.message.msg_type == "status":
                        break
            nursery.cancel_scope.cancel()
    finally:
        pub.close(0)
        ctx.destroy(0)
    assert seen == ["iopub_welcome", "stream", "status"]
    s = handle.stats
    assert (s.forged, s.malformed, s.replayed, s.received) == (1, 3, 1, 3)
    drops = [r for r in caplog.records if "event=channel.drop" in r.getMessage()]
    assert len(drops) == 5
    assert all(KEY.decode() not in r.getMessage() for r in caplog.records)


async def test_watchers_get_only_their_own_replies() -> None:
    ctx = new_context()
    router = ctx.socket(zmq.ROUTER)
    router.bind("tcp://127.0.0.1:*")
    signer = Signer(KEY)
    kernel = Session()
    client = Session()
    try:
        async with trio.open_nursery() as nursery:
            cfg = ChannelConfig(name="shell", endpoint=_endpoint(router), signer=signer, identity=b"c")
            handle = await nursery.start(run_channel, cfg, ctx)
            boxes = {}
            requests = []
            for i in range(3):
                req = client.message("kernel_info_request")
                requests.append(req)
                boxes[i] = trio.open_memory_channel(10)
                handle.mailbox.post(Watch(req.msg_id, boxes[i][0]))
                handle.mailbox.post(Send(req))
            with trio.fail_after(10):
                for req in reversed(requests):  # answer in reverse order
                    while True:
                        try:
                            router.recv_multipart(zmq.NOBLOCK)
                            break
                        except zmq.Again:
                            await trio.sleep(0.01)
                    reply = kernel.message("kernel_info_reply", {"n": requests.index(req)}, parent=req)
                    router.send_multipart(encode(reply, signer, [b"c"]))
                got = [(await boxes[i][1].receive()).message.content["n"] for i in range(3)]
            nursery.cancel_scope.cancel()
    finally:
        router.close(0)
        ctx.destroy(0)
    assert got == [0, 1, 2]


async def test_watcher_hears_its_idle_and_the_types_it_asked_for() -> None:
    """On iopub a Watch gets status idle plus its msg_types; busy goes to subscribers only."""
    ctx = new_context()
    pub = ctx.socket(zmq.PUB)
    pub.bind("tcp://127.0.0.1:*")
    signer = Signer(KEY)
    kernel, client = Session(), Session()
    req = client.message("execute_request", {"code": "print(1)"})
    try:
        async with trio.open_nursery() as nursery:
            cfg = ChannelConfig(name="iopub", endpoint=_endpoint(pub), signer=signer)
            handle = await nursery.start(run_channel, cfg, ctx)
            sub_send, sub_recv = trio.open_memory_channel(math.inf)
            w_send, w_recv = trio.open_memory_channel(math.inf)
            handle.mailbox.post(Subscribe(sub_send, frozenset({"status"})))
            handle.mailbox.post(Watch(req.msg_id, w_send, frozenset({"stream"})))
            with trio.fail_after(10):
                while True:  # PUB drops what it sends before the subscription arrives: probe until heard
                    pub.send_multipart(encode(kernel.message("status", {"execution_state": "starting"}), signer))
                    with trio.move_on_after(0.05):
                        await sub_recv.receive()
                        break
                for msg_type, content in [
                    ("status", {"execution_state": "busy"}),
                    ("execute_input", {"code": "print(1)", "execution_count": 1}),
                    ("stream", {"name": "stdout", "text": "1\n"}),
                    ("status", {"execution_state": "idle"}),
                ]:
                    pub.send_multipart(encode(kernel.message(msg_type, content, parent=req), signer))
                watched = [(await w_recv.receive()).message for _ in range(2)]
                heard = []
                while len(heard) < 2:
                    m = (await sub_recv.receive()).message
                    if m.parent_id == req.msg_id:
                        heard.append(m.content["execution_state"])
            left_over = w_recv.statistics().current_buffer_used  # before the actor ends (it then fails watchers)
            nursery.cancel_scope.cancel()
    finally:
        pub.close(0)
        ctx.destroy(0)
    assert [(m.msg_type, m.content.get("execution_state")) for m in watched] == [("stream", None), ("status", "idle")]
    assert heard == ["busy", "idle"]
    assert left_over == 0  # neither busy nor execute_input reached the watcher


class _IoWaits(trio.abc.Instrument):
    """Records the timeout of every trio I/O wait: 0 while some task is runnable, > 0 when the loop sleeps."""

    def __init__(self) -> None:
        self.timeouts: list[float] = []

    def before_io_wait(self, timeout: float) -> None:
        self.timeouts.append(timeout)


async def _wait_recording(owner: SocketOwner, seconds: float) -> list[float]:
    waits = _IoWaits()
    trio.lowlevel.add_instrument(waits)
    try:
        with trio.move_on_after(seconds):
            await owner.wait()
    finally:
        trio.lowlevel.remove_instrument(waits)
    return waits.timeouts


async def _receive(peer: zmq.Socket, owner: SocketOwner, payload: bytes) -> None:
    peer.send(payload)
    with trio.fail_after(10):
        got: list[list[bytes]] = []
        while not got:
            await owner.wait()
            got = owner.drain()
    assert got == [[payload]]


async def test_socket_owner_busy_polls_only_while_input_streams() -> None:
    ctx = new_context()
    peer, sock = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    peer.bind("inproc://spin")
    sock.connect("inproc://spin")
    streaming, brief = SocketOwner(sock, spin_s=30), SocketOwner(sock, spin_s=1.0)
    try:
        await _receive(peer, streaming, b"1")  # one batch alone: the next wait sleeps at once
        assert any(t > 0 for t in await _wait_recording(streaming, 0.05))
        await _receive(peer, streaming, b"2")  # a second batch soon after: input is streaming
        polled = await _wait_recording(streaming, 0.05)
        assert polled and all(t == 0 for t in polled)  # the loop never slept
        peer.send(b"3")  # what arrives while it polls is picked up
        with trio.fail_after(10):
            await streaming.wait()
        assert streaming.drain() == [[b"3"]]
        # a short window: polling stops after it and the loop sleeps again
        await _receive(peer, brief, b"4")
        await _receive(peer, brief, b"5")
        timeouts = await _wait_recording(brief, 2.5)
        assert timeouts[0] == 0 and timeouts[-1] > 0
    finally:
        ctx.destroy(linger=0)


async def test_socket_owner_polling_ends_under_an_autojump_clock(autojump_clock) -> None:
    """A mock clock stands still while a task polls; the poll count bounds the window then."""
    ctx = new_context()
    peer, sock = ctx.socket(zmq.PAIR), ctx.socket(zmq.PAIR)
    peer.bind("inproc://spin-mock")
    sock.connect("inproc://spin-mock")
    owner = SocketOwner(sock, spin_s=0.001)
    try:
        await _receive(peer, owner, b"1")
        await _receive(peer, owner, b"2")
        start = trio.current_time()
        with trio.move_on_after(5):
            await owner.wait()  # polls, then sleeps: only then can the clock jump
        assert trio.current_time() - start >= 5
    finally:
        ctx.destroy(linger=0)
