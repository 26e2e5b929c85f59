"""
The typed action helpers, named after the actions of the AMI manual.

`AMIActions` turns each call into headers and hands them to ``_send``, which
`AMIProtocol` implements on its connection and `AMIFactory` forwards to its
current connection; so ``protocol.ping()`` and ``factory.ping()`` are the same
code.  Any other of Asterisk's actions works through ``send_action``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, Final

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from txami.compat import iax_peers_from_text
from txami.errors import AMIError
from txami.message import Headers, Message, _pairs_of, new_action_id

__all__ = ["UNTAGGED_ITEMS", "AMIActions"]

#: List actions whose items Asterisk sends without the ActionID: lower-cased action name ->
#: the item event's name (pass it as ``send_action(..., untagged_items=...)``).
UNTAGGED_ITEMS: Mapping[str, str] = MappingProxyType({"iaxpeers": "PeerEntry"})

# What a pending action waits for besides its response (see AMIProtocol._send).
RESPONSE: Final = 0
EVENT: Final = 2
RAW: Final = 3
#: A list action whose response may lack ``EventList: start`` (old servers, or
#: ``send_action(list_complete=...)``): its list ends at a named event.
LISTING: Final = 6


def _items(response: Message) -> list[Message]:
    return list(response.events)


def _peer_items(response: Message) -> list[Message]:
    if response.kind == "response" and response.name is None:  # 1.4's text answer
        return iax_peers_from_text(response.getall("Output"))
    return list(response.events)


def _output(response: Message) -> list[str]:
    return response.getall("Output")


class AMIActions:
    """Typed helpers over ``_send``; mixed into `AMIProtocol` and `AMIFactory`."""

    timeout: float

    def _send(
        self,
        name: str,
        pairs: list[tuple[str, str]],
        timeout: float | None = None,
        *,
        mode: int = RESPONSE,
        awaited: str | tuple[str, ...] | None = None,
        untagged: str | None = None,
    ) -> Deferred[Message]:
        raise NotImplementedError

    def _send_bare(self, name: str) -> Deferred[Message]:
        """`_send` of an action without headers (`AMIProtocol` has a faster one)."""
        return self._send(name, [])

    def _finish_raw(self, action_id: str) -> None:
        raise NotImplementedError

    def send_action(
        self,
        name: str,
        headers: Headers | None = None,
        *,
        action_timeout: float | None = None,
        untagged_items: str | None = None,
        list_complete: str | None = None,
        **more: Any,
    ) -> Deferred[Message]:
        """
        Send action ``name`` and return a Deferred that fires once with its answer.

        Headers come from ``headers`` (a mapping, or ``(name, value)`` pairs
        when order or repeats matter) and then from ``more`` keywords; a list
        value repeats the header and `None` leaves it out.  An ``ActionID``
        header, if given, is used instead of a generated one.

        The Deferred fires with the response.  If the response starts a list
        (``EventList: start``), it fires once the list is complete, and the
        response's ``events`` holds the items in order.  It errbacks `AMIError`
        on ``Response: Error``, `ActionTimeout` after ``action_timeout``
        seconds (default: the ``timeout`` attribute), `ConnectionLost` if the
        connection ends first, and at once `NotConnected` if there is no
        connection.  ``untagged_items`` names a list item event that the server
        sends without an ActionID (IAXpeers does this with ``PeerEntry``).

        ``list_complete`` names the event that ends the action's list, for a
        list action that answers without ``EventList: start`` and is not in
        txami's table of such actions (`txami.compat.LIST_ENDS`, used for
        servers before Asterisk 13.2): its items are then collected up to that
        event (or ``EventList: Complete``) as for any list.

        Raises `ValueError` (and writes nothing) if a header name or value
        holds CR, LF or NUL.
        """
        pairs = _pairs_of(headers)
        if more:
            pairs.extend(_pairs_of(more))
        if list_complete is not None:
            return self._send(
                name,
                pairs,
                action_timeout,
                mode=LISTING,
                awaited=(list_complete.lower(),),
                untagged=untagged_items,
            )
        return self._send(name, pairs, action_timeout, untagged=untagged_items)

    def logoff(self) -> Deferred[Message]:
        """End the session; fires with the ``Goodbye`` response, then the server closes."""
        return self._send("Logoff", [])

    def events(self, mask: str | bool | Sequence[str]) -> Deferred[Message]:
        """Change this session's event mask (``"on"``, ``"off"`` or classes, e.g. ``"call"``)."""
        if isinstance(mask, bool):
            value = "on" if mask else "off"
        else:
            value = mask if isinstance(mask, str) else ",".join(mask)
        return self._send("Events", [("EventMask", value)])

    def filter(self, filter: str, operation: str = "Add") -> Deferred[Message]:
        """Add a per-session event filter, e.g. ``"Event: Hangup"`` or ``"!Channel: Local/.*"``."""
        return self._send("Filter", [("Operation", operation), ("Filter", filter)])

    # --- calls and channels ------------------------------------------------------------------

    def ping(self) -> Deferred[Message]:
        """Ping the server; fires with the ``Ping: Pong`` response."""
        return self._send_bare("Ping")

    def originate(
        self,
        channel: str,
        exten: str | None = None,
        context: str | None = None,
        priority: int | str | None = None,
        application: str | None = None,
        data: str | None = None,
        timeout: int | None = None,
        caller_id: str | None = None,
        variables: Mapping[str, object] | None = None,
        account: str | None = None,
        async_: bool = False,
        action_timeout: float | None = None,
    ) -> Deferred[Message]:
        """
        Place a call from ``channel`` to ``exten@context`` or to ``application(data)``.

        ``timeout`` is the ring timeout in milliseconds (the AMI ``Timeout``
        header); ``variables`` become repeated ``Variable: name=value`` headers.

        Synchronous (the default): Asterisk answers only once the channel has
        answered or failed; fires with that response, errbacks `AMIError`.

        With ``async_=True`` Asterisk answers at once and later broadcasts an
        ``OriginateResponse`` event with this action's ActionID; the Deferred
        fires with that event when its ``Response`` is ``Success`` and errbacks
        `OriginateError` (with the ``Reason``) otherwise.  A session whose event
        mask excludes call events never receives that event: then only the
        timeout ends the wait.  The event also reaches the event handlers.

        Unless ``action_timeout`` is given, it is the protocol's timeout, and
        at least ``timeout`` plus 5 s.
        """
        pairs = _pairs_of(
            [
                ("Channel", channel),
                ("Exten", exten),
                ("Context", context),
                ("Priority", priority),
                ("Application", application),
                ("Data", data),
                ("Timeout", timeout),
                ("CallerID", caller_id),
                ("Account", account),
                ("Async", "true" if async_ else None),
            ]
        )
        if variables:
            pairs.extend(("Variable", f"{k}={v}") for k, v in variables.items())
        if action_timeout is None:
            ring = (timeout if timeout is not None else 30000) / 1000.0
            action_timeout = max(self.timeout, ring + 5.0)
        if async_:
            return self._send(
                "Originate", pairs, action_timeout, mode=EVENT, awaited="originateresponse"
            )
        return self._send("Originate", pairs, action_timeout)

    def hangup(self, channel: str, cause: int | None = None) -> Deferred[Message]:
        """
        Hang up ``channel``, optionally with a Q.850 ``cause``.  A ``/regex/``
        channel hangs up every match; the response's ``events`` then lists them.
        """
        return self._send("Hangup", _pairs_of([("Channel", channel), ("Cause", cause)]))

    def redirect(
        self,
        channel: str,
        exten: str,
        context: str,
        priority: int | str = 1,
        extra_channel: str | None = None,
        extra_exten: str | None = None,
        extra_context: str | None = None,
        extra_priority: int | str | None = None,
    ) -> Deferred[Message]:
        """Transfer ``channel`` (and optionally a second channel) to ``exten@context``."""
        return self._send(
            "Redirect",
            _pairs_of(
                [
                    ("Channel", channel),
                    ("Exten", exten),
                    ("Context", context),
                    ("Priority", priority),
                    ("ExtraChannel", extra_channel),
                    ("ExtraExten", extra_exten),
                    ("ExtraContext", extra_context),
                    ("ExtraPriority", extra_priority),
                ]
            ),
        )

    def absolute_timeout(self, channel: str, timeout: int) -> Deferred[Message]:
        """Hang ``channel`` up after ``timeout`` seconds."""
        return self._send("AbsoluteTimeout", [("Channel", channel), ("Timeout", str(timeout))])

    def status(
        self, channel: str | None = None, variables: Iterable[str] | None = None
    ) -> Deferred[list[Message]]:
        """The ``Status`` events of every channel (or of ``channel``), with ``variables``."""
        pairs = _pairs_of(
            [("Channel", channel), ("Variables", ",".join(variables) if variables else None)]
        )
        return self._send("Status", pairs).addCallback(_items)

    def core_show_channels(self) -> Deferred[list[Message]]:
        """One ``CoreShowChannel`` event per active channel."""
        return self._send("CoreShowChannels", []).addCallback(_items)

    def get_var(self, variable: str, channel: str | None = None) -> Deferred[str]:
        """The value of a global or channel variable or dialplan function (``""`` if unset)."""
        pairs = _pairs_of([("Channel", channel), ("Variable", variable)])
        return self._send("Getvar", pairs).addCallback(
            lambda response: response.get("Value", "") or ""
        )

    def set_var(
        self, variable: str, value: str | int, channel: str | None = None
    ) -> Deferred[Message]:
        """Set a global or channel variable, or write a dialplan function."""
        pairs = _pairs_of([("Channel", channel), ("Variable", variable), ("Value", value)])
        return self._send("Setvar", pairs)

    def monitor(
        self,
        channel: str,
        file: str | None = None,
        format: str | None = None,
        mix: bool = False,
    ) -> Deferred[Message]:
        """Start recording ``channel`` (the ``Monitor`` action; gone from Asterisk 21)."""
        pairs = _pairs_of(
            [
                ("Channel", channel),
                ("File", file),
                ("Format", format),
                ("Mix", "true" if mix else None),
            ]
        )
        return self._send("Monitor", pairs)

    def stop_monitor(self, channel: str) -> Deferred[Message]:
        """Stop recording ``channel``."""
        return self._send("StopMonitor", [("Channel", channel)])

    def change_monitor(self, channel: str, file: str) -> Deferred[Message]:
        """Record ``channel`` under a new file name."""
        return self._send("ChangeMonitor", [("Channel", channel), ("File", file)])

    def user_event(
        self, name: str, headers: Headers | None = None, **more: Any
    ) -> Deferred[Message]:
        """Raise ``UserEvent`` ``name`` with extra headers, seen by every listening session."""
        pairs = [("UserEvent", name), *_pairs_of(headers)]
        if more:
            pairs.extend(_pairs_of(more))
        return self._send("UserEvent", pairs)

    # --- dialplan, mailboxes, database ---------------------------------------------------------

    def extension_state(self, exten: str, context: str) -> Deferred[Message]:
        """The hint state of ``exten@context`` (``Status``, ``StatusText``)."""
        return self._send("ExtensionState", [("Exten", exten), ("Context", context)])

    def mailbox_status(self, mailbox: str) -> Deferred[Message]:
        """Whether ``mailbox`` (``box@context``) has waiting messages (``Waiting``)."""
        return self._send("MailboxStatus", [("Mailbox", mailbox)])

    def mailbox_count(self, mailbox: str) -> Deferred[Message]:
        """The message counts of ``mailbox`` (``NewMessages``, ``OldMessages``, ...)."""
        return self._send("MailboxCount", [("Mailbox", mailbox)])

    def db_get(self, family: str, key: str) -> Deferred[str]:
        """The value stored in Asterisk's database under ``family/key``."""

        def value(response: Message) -> str:
            for event in response.events:
                found = event.get("Val")
                if found is not None:
                    return found
            return response.get("Val", "") or ""

        return self._send("DBGet", [("Family", family), ("Key", key)]).addCallback(value)

    def db_put(self, family: str, key: str, value: str | int) -> Deferred[Message]:
        """Store ``value`` in Asterisk's database under ``family/key``."""
        return self._send("DBPut", [("Family", family), ("Key", key), ("Val", str(value))])

    def command(self, cli: str) -> Deferred[list[str]]:
        """
        Run a CLI command; fires with its output lines.

        Both framings give the same lines: Asterisk 14+ (``Output:`` headers)
        and older servers (``Response: Follows`` and raw text).  An unknown
        command errbacks `AMIError` whose ``output`` holds the CLI's complaint.
        """
        return self._send("Command", [("Command", cli)]).addCallback(_output)

    # --- queues and IAX ------------------------------------------------------------------------

    def queue_status(
        self, queue: str | None = None, member: str | None = None
    ) -> Deferred[list[Message]]:
        """``QueueParams``, ``QueueMember`` and ``QueueEntry`` events, in order."""
        pairs = _pairs_of([("Queue", queue), ("Member", member)])
        return self._send("QueueStatus", pairs).addCallback(_items)

    def queue_summary(self, queue: str | None = None) -> Deferred[list[Message]]:
        """One ``QueueSummary`` event per queue (or for ``queue``)."""
        return self._send("QueueSummary", _pairs_of([("Queue", queue)])).addCallback(_items)

    def queues(self) -> Deferred[list[str]]:
        """
        The text of ``queue show``, as the ``Queues`` action gives it.

        Asterisk removed ``Queues`` in version 15: newer servers errback
        `AMIError` (``Invalid/unknown command``).  Older ones answer with bare
        text, no response line and no ActionID; txami follows it with a
        ``Ping`` and takes everything that arrives before the Ping's answer
        as the text (whatever the answer: ``Pong`` on 1.4, an untagged
        ``Success`` on 1.6.0 to 1.6.1, an error).
        """
        action_id = new_action_id()
        d = self._send("Queues", [("ActionID", action_id)], mode=RAW)

        def answered(result: Message | Failure) -> None:
            # Any answer proves the text complete; with none (a timeout, a lost
            # connection) the Queues action ends by its own timeout or that loss.
            if not isinstance(result, Failure) or isinstance(result.value, AMIError):
                self._finish_raw(action_id)

        self._send("Ping", []).addBoth(answered)
        return d.addCallback(_output)

    def iax_peers(self) -> Deferred[list[Message]]:
        """
        One ``PeerEntry`` event per IAX2 peer (Asterisk sends them without
        ActionID).  Asterisk 1.4 answers with the CLI's table instead: its rows
        are given as ``PeerEntry`` messages (see `txami.compat.iax_peers_from_text`).
        """
        untagged = UNTAGGED_ITEMS["iaxpeers"]
        return self._send("IAXpeers", [], untagged=untagged).addCallback(_peer_items)
