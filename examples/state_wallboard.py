"""
A queue wallboard: one line per queue, drawn again whenever a queue changes.

    python examples/state_wallboard.py HOST PORT USERNAME SECRET
"""

import sys

from twisted.internet.defer import Deferred
from twisted.internet.task import react

import txami


class Wallboard(txami.StateListenerMixin):
    def __init__(self, state, out=print):
        self.state, self.out = state, out

    def draw(self, *changed):
        now = self.state.clock.seconds()
        for queue in self.state.queues.values():
            wait = now - queue.longest_wait if queue.entries else 0
            agents = ", ".join(
                f"{m.name or m.interface} {'paused' if m.paused else m.status_text.lower()}"
                for m in queue.members.values()
            )
            self.out(
                f"{queue.name}: {queue.calls} waiting (longest {wait:.0f} s), "
                f"{queue.completed} answered, {queue.abandoned} abandoned, "
                f"hold {queue.holdtime} s | {agents}"
            )

    queue_updated = queue_member_updated = queue_entry_joined = queue_entry_left = draw
    synced = draw


async def main(reactor, host="127.0.0.1", port=5038, username="admin", secret=""):
    ami = await txami.connect(reactor, host, int(port), username=username, secret=secret)
    state = txami.PBXState(ami)
    state.add_listener(Wallboard(state))
    await state.start()
    await Deferred()  # until Ctrl-C


if __name__ == "__main__":
    react(lambda reactor: Deferred.fromCoroutine(main(reactor, *sys.argv[1:])))
