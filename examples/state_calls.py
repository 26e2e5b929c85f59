"""
Print the calls of a PBX as they start and end.

    TXAMI_SECRET=... python examples/state_calls.py HOST PORT USERNAME

A `PBXState` follows the PBX through reconnects; this listener hears of each
call once when it starts, and once when it ends or joins another call.
"""

import os
import sys

from twisted.internet.defer import Deferred
from twisted.internet.task import react

import txami


class CallPrinter(txami.StateListenerMixin):
    def __init__(self, out=print):
        self.out = out

    def call_new(self, call):
        first = call.channels[0]
        who = first.caller_id_name or first.caller_id_num or first.name
        self.out(f"call {call.id} started: {who} -> {first.exten}")

    def call_merged(self, call, into):
        self.out(f"call {call.id} joined call {into.id}")

    def call_ended(self, call, reason):
        answered = "answered" if call.answered is not None else "not answered"
        self.out(f"call {call.id} ended ({reason}, {answered})")


async def main(reactor, host="127.0.0.1", port=5038, username="admin", secret=None, until=None):
    if secret is None:
        secret = os.environ.get("TXAMI_SECRET", "")  # not argv: ps would show it
    ami = await txami.connect(reactor, host, int(port), username=username, secret=secret)
    state = txami.PBXState(ami)
    state.add_listener(CallPrinter())
    await state.start()
    print(f"synced: {len(state.calls)} calls up")
    await (until if until is not None else Deferred())  # until Ctrl-C
    state.stop()
    await ami.stop()


if __name__ == "__main__":
    react(lambda reactor: Deferred.fromCoroutine(main(reactor, *sys.argv[1:])))
