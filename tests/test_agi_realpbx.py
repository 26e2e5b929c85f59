"""
txami.agi against the real Asterisk of this run (skipped without one; see
tests/realpbx.py).  FastAGI: a handler on a free port of 127.0.0.1 that
extension 900 connects to (``AGI(agi://${AGIHOST}/txami,one,two)``, AGIHOST
set by Originate's Variable).  AsyncAGI: extension 901 (``AGI(agi:async)``)
driven over the test's AMI session.  Both: the environment and arguments, a
variable set by AGI and read back through AMI Getvar, a digit pressed (AMI
PlayDTMF on the other leg of the Local channel), an invalid command and a
usage error, and a channel hung up from AMI in the middle of a command.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from twisted.internet import reactor as _reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from tests.realpbx import CONTEXT, SKIP, connect_user, unique_tag, wait_for, with_timeout
from tests.test_integration import load_example
from txami import AMIFactory, Message
from txami.agi import (
    AGICommands,
    AGIError,
    AGIHangup,
    AsyncAGI,
    AsyncAGIServer,
    FastAGIFactory,
    FastAGIProtocol,
)

reactor: Any = _reactor

#: A script run on the call: ``script(agi, ami)``.
Script = Callable[[AGICommands, AMIFactory], Awaitable[Any]]


class _RealAGICase(TestCase):
    """One AMI session per test; calls tagged with a unique caller ID and hung up at the end."""

    skip = SKIP
    timeout = 30

    async def ami(self) -> AMIFactory:
        ami = await connect_user(reactor)
        self.addCleanup(ami.stop)
        return ami

    def run_script(self, script: Script, ami: AMIFactory, tag: str) -> Callable[[Any], Any]:
        """A handler that runs ``script`` on our call only; ``self.outcome`` fires after it."""
        self.outcome: Deferred[Any] = Deferred()
        self.sessions: list[AGICommands] = []

        async def handler(agi: AGICommands) -> None:
            if agi.env.caller_id != tag:
                return  # another test's call
            self.sessions.append(agi)
            try:
                value = await script(agi, ami)
            except Exception as error:
                self.outcome.errback(error)
            else:
                self.outcome.callback(value)

        return handler

    async def originate(self, ami: AMIFactory, exten: str, tag: str, **variables: str) -> None:
        """Call ``exten`` from a Local channel whose other leg waits; hang it up at the end."""
        self.addCleanup(self.hang_up, ami, exten)
        await ami.originate(
            f"Local/{exten}@{CONTEXT}",
            application="Wait",
            data="30",
            caller_id=f'"txami agi" <{tag}>',
            variables=variables,
            async_=True,
        )

    async def hang_up(self, ami: AMIFactory, exten: str) -> None:
        """Hang up whatever is left of our calls (none, normally)."""
        for session in self.sessions:
            with contextlib.suppress(Exception):
                await ami.hangup(session.env.channel)

    def running(self, ami: AMIFactory, agi: AGICommands, command: str) -> Deferred[None]:
        """Fires once Asterisk starts running ``command`` on the channel (AGIExecStart)."""
        started: Deferred[None] = Deferred()

        def exec_start(event: Message) -> None:
            if event.get("Channel") == agi.env.channel and event.get("Command") == command:
                ami.remove_event_handler("AGIExecStart", exec_start)
                started.callback(None)

        ami.add_event_handler("AGIExecStart", exec_start)
        return with_timeout(reactor, started, 10, f"AGIExecStart of {command}")

    async def press_when_waiting(
        self, ami: AMIFactory, agi: AGICommands, digit: str, command: str = "WAIT FOR DIGIT 10000"
    ) -> None:
        """Press ``digit`` once Asterisk runs ``command`` (WAIT FOR DIGIT) on the channel."""
        await self.running(ami, agi, command)
        # The Local channel's other leg (;1) plays the digit towards the AGI leg (;2).
        await ami.send_action("PlayDTMF", Channel=agi.env.channel[:-1] + "1", Digit=digit)

    async def check_call(self, agi: AGICommands, ami: AMIFactory) -> dict[str, Any]:
        """The steps both transports run on a live call; what they saw."""
        seen: dict[str, Any] = {}
        seen["answer"] = (await agi.answer()).result
        seen["status"] = await agi.channel_status()
        await agi.set_variable("TXAMI_AGI_TEST", 'hello "world"')
        seen["getvar"] = await ami.get_var("TXAMI_AGI_TEST", channel=agi.env.channel)
        seen["get_variable"] = await agi.get_variable("TXAMI_AGI_TEST")
        seen["callerid"] = await agi.get_variable("CALLERID(num)")
        seen["full"] = await agi.get_full_variable("${TXAMI_AGI_TEST}/${EXTEN}")
        waiting = agi.wait_for_digit(10000)
        await self.press_when_waiting(ami, agi, "7")
        seen["digit"] = (await waiting).digit
        try:
            await agi.send_command("TXAMI NO SUCH COMMAND")
        except AGIError as error:
            seen["invalid"] = (error.code, error.text)
        try:
            await agi.send_command("SET VARIABLE", "ONLYNAME")
        except AGIError as error:
            seen["usage"] = (error.code, error.usage)
        return seen

    def assert_call(self, seen: dict[str, Any], tag: str, exten: str) -> None:
        self.assertEqual(
            {k: v for k, v in seen.items() if k != "usage"},
            {
                "answer": "0",
                "status": 6,
                "getvar": 'hello "world"',
                "get_variable": 'hello "world"',
                "callerid": tag,
                "full": f'hello "world"/{exten}',
                "digit": "7",
                "invalid": (510, "Invalid or unknown command"),
            },
        )
        self.assertEqual(seen["usage"], (520, "Sets a variable to the current channel."))

    async def dead_channel(self, agi: AGICommands, ami: AMIFactory) -> tuple[Any, ...]:
        """A command runs when AMI hangs the channel up; then the session refuses commands."""
        await agi.answer()
        started = self.running(ami, agi, "EXEC Wait 10")
        running = agi.exec("Wait", 10)
        await started
        await ami.hangup(agi.env.channel)
        first = await running
        try:
            await agi.noop()
        except AGIHangup as error:
            return first.result, "AGIHangup", error.reason
        return first.result, "no error", None


class FastAGITests(_RealAGICase):
    """Extension 900 calls a txami FastAGI server on 127.0.0.1."""

    async def serve(self, script: Script) -> tuple[AMIFactory, str]:
        ami = await self.ami()
        tag = unique_tag("agi")
        factory = FastAGIFactory(self.run_script(script, ami, tag), reactor=reactor)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        await self.originate(ami, "900", tag, AGIHOST=f"127.0.0.1:{port.getHost().port}")
        return ami, tag

    async def test_call(self) -> None:
        """Environment, arguments, a variable read back by AMI Getvar, a digit, two errors."""
        _ami, tag = await self.serve(self.check_call)
        seen = await with_timeout(reactor, self.outcome, 20, "the FastAGI script")
        self.assert_call(seen, tag, "900")
        [agi] = self.sessions
        env = agi.env
        self.assertEqual(
            (env.network, env.network_script, env.arguments), (True, "txami", ("one", "two"))
        )
        self.assertEqual((env.context, env.extension, env.priority), (CONTEXT, "900", 2))
        self.assertTrue(env.channel.startswith("Local/900@txami-test-"), env.channel)
        self.assertTrue(env.request.startswith("agi://127.0.0.1:"), env.request)
        assert isinstance(agi, FastAGIProtocol)
        # The handler is done: txami closes, and Asterisk carries on in the dialplan.
        await with_timeout(reactor, agi.when_finished(), 10, "the FastAGI connection to close")

    async def test_dead_channel(self) -> None:
        """Hung up from AMI mid-EXEC: the EXEC gives -1, then HANGUP fails the next command."""
        await self.serve(self.dead_channel)
        result = await with_timeout(reactor, self.outcome, 20, "the FastAGI script")
        self.assertEqual(result, ("-1", "AGIHangup", "HANGUP"))
        [agi] = self.sessions
        assert isinstance(agi, FastAGIProtocol)
        self.assertTrue(agi.hung_up)


class AsyncAGITests(_RealAGICase):
    """Extension 901 runs AGI(agi:async), driven over AMI."""

    async def serve(self, script: Script) -> tuple[AMIFactory, str]:
        ami = await self.ami()
        tag = unique_tag("aag")
        server = AsyncAGIServer(ami, self.run_script(script, ami, tag))
        server.start()
        self.addCleanup(server.stop)
        await self.originate(ami, "901", tag)
        return ami, tag

    async def test_call(self) -> None:
        """The same steps over AMI; the handler's end sends ASYNCAGI BREAK, then AsyncAGIEnd."""
        _ami, tag = await self.serve(self.check_call)
        seen = await with_timeout(reactor, self.outcome, 20, "the AsyncAGI script")
        self.assert_call(seen, tag, "901")
        [agi] = self.sessions
        assert isinstance(agi, AsyncAGI)
        self.assertEqual(
            (agi.env.request, agi.env.network, agi.env.arguments), ("async", False, ())
        )
        await with_timeout(reactor, agi.when_ended(), 10, "AsyncAGIEnd after ASYNCAGI BREAK")
        self.assertTrue(agi.hung_up)

    async def test_dead_channel(self) -> None:
        """Hung up from AMI mid-EXEC: the EXEC gives -1, then the session refuses commands."""
        await self.serve(self.dead_channel)
        result, kind, reason = await with_timeout(reactor, self.outcome, 20, "the AsyncAGI script")
        self.assertEqual((result, kind), ("-1", "AGIHangup"))
        # AsyncAGIEnd, or AMI refusing the action if the NOOP went out before it arrived.
        self.assertIn(reason.split(":")[0], ("AsyncAGIEnd", "AMI refused the AGI action"))

    async def test_example_handler(self) -> None:
        """examples/agi_async.py on a real call: the digit pressed lands in a variable."""
        example = load_example("agi_async")
        ami = await self.ami()
        tag = unique_tag("aex")
        sessions: list[AsyncAGI] = []

        def handler(agi: AsyncAGI) -> Any:
            if agi.env.caller_id != tag:
                return None
            sessions.append(agi)
            return example.handler(agi)

        values: dict[str, str] = {}

        def var_set(event: Message) -> None:
            if sessions and event.get("Channel") == sessions[0].channel:
                values[event.get("Variable") or ""] = event.get("Value") or ""

        ami.add_event_handler("VarSet", var_set)
        self.addCleanup(ami.remove_event_handler, "VarSet", var_set)
        server = AsyncAGIServer(ami, handler)
        server.start()
        self.addCleanup(server.stop)
        await self.originate(ami, "901", tag)
        await wait_for(reactor, lambda: sessions or None, what="the AsyncAGI session")
        self.sessions = list(sessions)
        [agi] = sessions
        await self.press_when_waiting(ami, agi, "5", "WAIT FOR DIGIT 5000")
        await with_timeout(reactor, agi.when_ended(), 10, "the example handler to end")
        self.assertEqual(values.get("TXAMI_HANDLED_BY"), "examples/agi_async.py")
        self.assertEqual(values.get("TXAMI_PRESSED"), "5")
