"""
A tour of txami's typed helpers: one call for each action of the AMI manual.

Against the fake PBX that ships with txami (no Asterisk needed)::

    python examples/tour.py --demo

Against a real Asterisk (the user needs read and write ``all`` to see every
step; the calls go to extensions of the context ``txami-test`` described in
the project's transcripts, so adapt `DIALPLAN` to yours)::

    TXAMI_SECRET=... python examples/tour.py --host pbx.example.com --username admin

The guide docs/using.rst ("One call per action") shows this file; the test
suite runs it against the fake PBX.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import react

from txami import AMIError, Message, OriginateError, connect
from txami.actions import AMIActions

#: Where the tour places its calls: context, an extension that answers and
#: waits an hour, one that answers and hangs up after a second, and a hint.
DIALPLAN = {"context": "txami-test", "wait": "1000", "short": "1002", "hint": "2000"}


async def tour(ami: AMIActions, say: Callable[[str], object] = print) -> None:
    """Call every typed helper once and print what it returned."""
    context = DIALPLAN["context"]

    # --- the session -----------------------------------------------------------------------
    pong = await ami.ping()
    say(f"ping: {pong['Ping']}")

    await ami.events("call,user")  # this session now receives call and user events only
    say("events: call,user")

    await ami.filter("!Event: Newexten")  # and never Newexten
    say("filter: !Event: Newexten")

    # --- the CLI ---------------------------------------------------------------------------
    lines = await ami.command("core show uptime")
    say(f"command: {lines[0]}")

    # --- calls -----------------------------------------------------------------------------
    answered = await ami.originate(
        f"Local/{DIALPLAN['wait']}@{context}",
        exten=DIALPLAN["wait"],
        context=context,
        priority=1,
        caller_id='"Tour" <5550100>',
        variables={"CAMPAIGN": "tour"},
    )
    say(f"originate: {answered['Message']}")

    event = await ami.originate(
        f"Local/{DIALPLAN['short']}@{context}", application="Wait", data="1", async_=True
    )
    say(f"originate async: {event['Response']}, reason {event['Reason']}")

    try:
        await ami.originate(f"Local/9999@{context}", application="Wait", data="1", async_=True)
    except OriginateError as error:
        say(f"originate async to nowhere: {error.message}, reason {error.reason}")

    channels = await ami.status()
    say(f"status: {sorted(c['Channel'] for c in channels)}")
    channel = channels[0]["Channel"]

    shown = await ami.core_show_channels()
    say(f"core_show_channels: {[c['Channel'] for c in shown] == [c['Channel'] for c in channels]}")

    await ami.set_var("CAMPAIGN", "spring", channel=channel)
    say(f"get_var: {await ami.get_var('CAMPAIGN', channel=channel)}")

    await ami.set_var("TOUR_GLOBAL", "yes")
    say(f"get_var (global): {await ami.get_var('TOUR_GLOBAL')}")

    await ami.monitor(channel, file="tour-call", format="wav", mix=True)
    await ami.change_monitor(channel, "tour-call-2")
    await ami.stop_monitor(channel)
    say("monitor, change_monitor, stop_monitor: ok")

    await ami.absolute_timeout(channel, 3600)
    say("absolute_timeout: ok")

    await ami.redirect(channel, DIALPLAN["wait"], context)
    say("redirect: ok")

    hung = await ami.hangup(channel, cause=16)
    say(f"hangup: {hung['Message']}")

    # --- voicemail, hints, the database ------------------------------------------------------
    counts = await ami.mailbox_count("1234@default")
    say(f"mailbox_count: {counts['NewMessages']} new, {counts['OldMessages']} old")

    waiting = await ami.mailbox_status("1234@default")
    say(f"mailbox_status: waiting {waiting['Waiting']}")

    state = await ami.extension_state(DIALPLAN["hint"], context)
    say(f"extension_state: {state['StatusText']}")

    await ami.db_put("tour", "last_run", "today")
    say(f"db_get: {await ami.db_get('tour', 'last_run')}")

    await ami.user_event("TourDone", Step="last")
    say("user_event: TourDone")

    # --- queues and IAX ---------------------------------------------------------------------
    entries = await ami.queue_status("support")
    say(f"queue_status: {[e.name for e in entries]}")

    summary = await ami.queue_summary()
    say(f"queue_summary: {[(s['Queue'], s['LoggedIn']) for s in summary]}")

    try:
        text = await ami.queues()
        say(f"queues: {len(text)} lines")
    except AMIError as error:  # the Queues action is gone since Asterisk 15
        say(f"queues: {error.message.split('.')[0]}")

    peers = await ami.iax_peers()
    say(f"iax_peers: {sorted(p['ObjectName'] for p in peers)}")

    # --- anything else -----------------------------------------------------------------------
    settings = await ami.send_action("CoreSettings")
    say(f"send_action: Asterisk {settings['AsteriskVersion']}")


async def _main(reactor: Any, options: argparse.Namespace) -> None:
    host, port, username, secret = options.host, options.port, options.username, options.secret
    fake = listening = None
    if options.demo:
        from txami.testing import FakeAsterisk, listen

        fake = FakeAsterisk(reactor)
        listening = listen(fake, reactor)
        host, port, username, secret = "127.0.0.1", listening.getHost().port, "admin", "adminsecret"
    calls: list[Message] = []
    factory = await connect(reactor, host, port, username=username, secret=secret)
    factory.add_event_handler("Hangup", calls.append)
    try:
        await tour(factory)
    finally:
        await factory.stop()
        if fake is not None and listening is not None:
            fake.stop()
            await listening.stopListening()
    print(f"({len(calls)} Hangup events seen)")


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run the tour."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo", action="store_true", help="run against txami's fake PBX")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5038)
    parser.add_argument("--username", default="admin")
    options = parser.parse_args(argv)
    options.secret = os.environ.get("TXAMI_SECRET", "")
    if not options.demo and not options.secret:
        parser.error("set TXAMI_SECRET to the AMI user's secret, or use --demo")
    react(lambda reactor: Deferred.fromCoroutine(_main(reactor, options)))


if __name__ == "__main__":
    main(sys.argv[1:])
