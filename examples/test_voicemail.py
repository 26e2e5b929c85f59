"""
The sample test of the testing guide (docs/testing.rst includes this file).

Copy it next to your code and run it with ``python -m twisted.trial test_voicemail``;
txami's own suite runs it too (tests/test_testing_sample.py).
"""

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from txami import ActionTimeout, AMIError, AMIProtocol, Message
from txami.testing import FakeAsterisk, connected_pair, listen, response


def new_voicemails(ami: AMIProtocol, mailbox: str) -> Deferred[int]:
    """The code under test: how many new messages wait in ``mailbox``."""
    d = ami.mailbox_count(mailbox)
    return d.addCallback(lambda answer: int(answer["NewMessages"]))


class NewVoicemailsTests(SynchronousTestCase):
    """Fast tests: the client and the fake server talk in memory, time is a Clock."""

    def setUp(self) -> None:
        self.clock = Clock()
        self.fake = FakeAsterisk(self.clock)
        self.fake.pbx.set_mailbox("1234@default", new=3, old=1)
        self.ami, self.session, self.pump = connected_pair(self.fake, self.clock)

    def test_counts_new_messages(self) -> None:
        """new_voicemails() fires with the box's NewMessages."""
        d = new_voicemails(self.ami, "1234@default")
        self.pump.flush()
        self.assertEqual(self.successResultOf(d), 3)

    def test_permission_denied(self) -> None:
        """A user without the 'call' write class gets Asterisk's refusal."""
        self.fake.add_user("ops", "opssecret", read="all", write="system")
        ami, _, pump = connected_pair(self.fake, self.clock, "ops", "opssecret")
        d = new_voicemails(ami, "1234@default")
        pump.flush()
        self.assertEqual(self.failureResultOf(d, AMIError).value.message, "Permission denied")

    def test_silent_server_times_out(self) -> None:
        """A server that never answers fails the call after the client's 30 s timeout."""
        self.fake.delay_action("MailboxCount", None)
        d = new_voicemails(self.ami, "1234@default")
        self.pump.flush()
        self.clock.advance(30)
        self.failureResultOf(d, ActionTimeout)

    def test_scripted_action_and_event(self) -> None:
        """Script an action the fake lacks, and push an event to the client."""
        self.fake.add_action("VoicemailRefresh", lambda session, action: response(action, "Ok"))
        seen: list[Message] = []
        self.ami.add_event_handler("MessageWaiting", seen.append)
        d = self.ami.send_action("VoicemailRefresh", Mailbox="1234@default")
        self.fake.emit_event("MessageWaiting", Mailbox="1234@default", Waiting="1", New="4")
        self.pump.flush()
        self.assertEqual(self.successResultOf(d)["Message"], "Ok")
        self.assertEqual([event["New"] for event in seen], ["4"])

    def test_a_call(self) -> None:
        """A call to exten 1002 answers, waits one second in the dialplan and hangs up."""
        hangups: list[Message] = []
        self.ami.add_event_handler("Hangup", hangups.append)
        d = self.ami.originate(
            "PJSIP/100", exten="1002", context="txami-test", priority=1, async_=True
        )
        self.pump.flush()
        self.assertEqual(self.successResultOf(d)["Reason"], "4")
        self.clock.advance(1)
        self.pump.flush()
        self.assertEqual([event["Channel"] for event in hangups], ["PJSIP/100-00000000"])


class OverTCPTests(TestCase):
    """The same code against the fake server on a real port of 127.0.0.1."""

    async def test_real_socket(self) -> None:
        """new_voicemails() works over TCP; the test leaves no socket or timer behind."""
        fake = FakeAsterisk(reactor)
        self.addCleanup(fake.stop)
        port = listen(fake, reactor)
        self.addCleanup(port.stopListening)
        ami = AMIProtocol(reactor)
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port)
        await connectProtocol(endpoint, ami)
        await ami.login("admin", "adminsecret")
        self.assertEqual(await new_voicemails(ami, "1234"), 2)
        await ami.logoff()
        await ami.when_disconnected()
