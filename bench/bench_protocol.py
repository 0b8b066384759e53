"""Time one execute_request through the sans-io layer, ours against jupyter_client's Session.

Ours:  build the request, encode (JSON + HMAC), then verify, record in a replay window and decode.
Theirs: ``Session.msg`` + ``serialize`` + ``feed_identities`` + ``deserialize`` (which also keeps a
digest history), with the same key and scheme, in the same process, interleaved round by round.

    python bench/bench_protocol.py              # orjson as installed (both sides use it when present)
    python bench/bench_protocol.py --no-orjson  # both sides on the stdlib json codec
    python bench/bench_protocol.py --profile    # cProfile of our side, top functions

Not a test: it prints timings and their ratio and asserts nothing.
"""

from __future__ import annotations

import argparse
import sys
import timeit

KEY = b"5d4a6bd0-51b9-4d4b-a5b7-5b4d2b0b8e21"  # jupyter_client uses a uuid4 string as the key


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--no-orjson", action="store_true", help="hide orjson from both sides (stdlib json)")
    ap.add_argument("--scheme", default="hmac-sha256", help="signature scheme (default hmac-sha256)")
    ap.add_argument("--number", type=int, default=4000, help="messages per timing round")
    ap.add_argument("--rounds", type=int, default=15, help="timing rounds; the best round counts")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of our side instead")
    args = ap.parse_args()
    if args.no_orjson:
        sys.modules["orjson"] = None  # type: ignore[assignment]  # makes `import orjson` fail

    from jupyter_client.session import Session as JCSession

    from jupervisor.protocol import ReplayWindow, Session, Signer, decode, encode, execute_request
    from jupervisor.protocol import _message

    session, signer, window = Session(), Signer(KEY, args.scheme), ReplayWindow()
    jc = JCSession(key=KEY, signature_scheme=args.scheme)

    def ours() -> object:
        return decode(encode(session.request(execute_request("pass")), signer), signer, window)

    def theirs() -> object:
        content = {
            "code": "pass",
            "silent": False,
            "store_history": True,
            "user_expressions": {},
            "allow_stdin": True,
            "stop_on_error": True,
        }
        _, frames = jc.feed_identities(jc.serialize(jc.msg("execute_request", content)))
        return jc.deserialize(frames)

    # both sides must really do the work: same message shape in, same content out
    assert ours().message.content == theirs()["content"]

    if args.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.runcall(lambda: [ours() for _ in range(args.number * 5)])
        pstats.Stats(prof).sort_stats("tottime").print_stats(20)
        return

    best_ours = best_theirs = float("inf")
    for _ in range(args.rounds):  # interleaved, so machine noise hits both sides alike
        best_ours = min(best_ours, timeit.timeit(ours, number=args.number) / args.number)
        best_theirs = min(best_theirs, timeit.timeit(theirs, number=args.number) / args.number)

    codec = "stdlib json" if _message._orjson is None else f"orjson {_message._orjson.__version__}"
    print(f"python {sys.version.split()[0]}, {codec}, {args.scheme}, best of {args.rounds} x {args.number}")
    print(f"jupervisor.protocol  encode+sign+verify+decode   {best_ours * 1e6:7.2f} us")
    print(f"jupyter_client       serialize+feed+deserialize  {best_theirs * 1e6:7.2f} us")
    print(f"ratio                                            {best_ours / best_theirs:7.2f}x (lower is better)")


if __name__ == "__main__":
    main()
