"""
`QueueTracker`: queues, members and waiting callers from app_queue's events
and ``QueueStatus`` rows.

Events handled: ``QueueCallerJoin``, ``QueueCallerLeave``,
``QueueCallerAbandon``, ``QueueMemberAdded``, ``QueueMemberRemoved``,
``QueueMemberStatus``, ``QueueMemberPause``, ``QueueMemberPenalty``,
``QueueMemberRinginuse``, ``AgentConnect`` and ``AgentComplete`` (the last
two feed the hold and talk time averages and the completed count, as
app_queue's own ``recalc_holdtime`` and ``update_queue`` do).  An event that
names a queue the model does not know asks for that queue's ``QueueStatus``
once (a queue added by a reload).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from txami.message import Message
from txami.state.channels import ChannelTracker
from txami.state.fields import UNIQUEID, channel_snapshot, header, text_of, to_int
from txami.state.objects import Channel
from txami.state.queue import Queue, QueueEntry, QueueMember
from txami.state.store import Store

__all__ = ["QueueTracker"]


class QueueTracker:
    """Applies queue events and rows to a `Store`."""

    def __init__(self, store: Store, channels: ChannelTracker) -> None:
        self.store = store
        self.channels = channels
        #: Called with a queue's name to re-read it (set by the sync).
        self.refresh: Callable[[str], None] | None = None
        channels.gone_hooks.append(self._channel_gone)

    def handlers(self) -> dict[str, Callable[[Message], None]]:
        """Event name -> handler, for registration."""
        return {
            "QueueCallerJoin": self.on_caller_join,
            "QueueCallerLeave": self.on_caller_leave,
            "QueueCallerAbandon": self.on_caller_abandon,
            "QueueMemberAdded": self.on_member,
            "QueueMemberStatus": self.on_member,
            "QueueMemberPause": self.on_member,
            "QueueMemberPenalty": self.on_member,
            "QueueMemberRinginuse": self.on_member,
            "QueueMemberRemoved": self.on_member_removed,
            "AgentConnect": self.on_agent_connect,
            "AgentComplete": self.on_agent_complete,
        }

    # --- queues ------------------------------------------------------------------------------

    def queue(self, name: str, ask: bool = True) -> Queue:
        """The queue ``name``, created (and re-read, if ``ask``) when unknown."""
        store = self.store
        queue = store.queues.get(name)
        if queue is None:
            queue = store.queues[name] = Queue(name)
            store.outbox.new("queue_new", queue)
            if ask and self.refresh is not None:
                self.refresh(name)
        return queue

    def gone(self, queue: Queue, reason: str) -> None:
        """Drop a queue with its members and entries."""
        store = self.store
        if store.queues.get(queue.name) is not queue:
            return
        for entry in list(queue.entries):
            self.leave(queue, entry, reason)
        del store.queues[queue.name]
        store.outbox.gone("queue_gone", queue, queue, reason)

    def _updated(self, queue: Queue, fields: Iterable[str]) -> None:
        self.store.outbox.updated("queue_updated", queue, fields)

    # --- members -----------------------------------------------------------------------------

    def member(self, queue: Queue, message: Message, text: str, row: bool) -> QueueMember | None:
        """Apply a member row or event; the member (added if new)."""
        interface = header(message, "Location" if row else "Interface", text)
        if not interface:
            return None
        outbox = self.store.outbox
        member = queue.members.get(interface)
        if member is None:
            member = queue.members[interface] = QueueMember(interface)
            member.apply(message, text, row)
            outbox.new("queue_member_added", member, queue)
            self._updated(queue, ("members",))
        else:
            changed = member.apply(message, text, row)
            if changed is not None:
                outbox.updated("queue_member_updated", member, changed, queue)
        return member

    def remove_member(self, queue: Queue, member: QueueMember, reason: str) -> None:
        if queue.members.get(member.interface) is member:
            del queue.members[member.interface]
            queue._connected_in_sl.pop(member.interface, None)
            self.store.outbox.gone("queue_member_removed", member, queue, member, reason)
            self._updated(queue, ("members",))

    # --- entries -----------------------------------------------------------------------------

    def join(self, queue: Queue, entry: QueueEntry) -> None:
        """Insert a waiting caller at its position; those behind move down one."""
        entries = queue.entries
        index = max(0, min(entry.position - 1, len(entries)))
        entries.insert(index, entry)
        store = self.store
        store.outbox.new("queue_entry_joined", entry, queue)
        store.queued.setdefault(entry.uniqueid, []).append(queue.name)
        self._renumber(queue, index + 1)
        self._updated(queue, ("calls",))

    def leave(self, queue: Queue, entry: QueueEntry, reason: str) -> None:
        """Remove a waiting caller; those behind move up one."""
        entries = queue.entries
        if entry not in entries:
            return
        index = entries.index(entry)
        del entries[index]
        store = self.store
        names = store.queued.get(entry.uniqueid)
        if names is not None:
            if queue.name in names:
                names.remove(queue.name)
            if not names:
                del store.queued[entry.uniqueid]
        store.outbox.gone("queue_entry_left", entry, queue, entry, reason)
        self._renumber(queue, index)
        self._updated(queue, ("calls",))

    def _renumber(self, queue: Queue, start: int) -> None:
        outbox = self.store.outbox
        for index in range(start, len(queue.entries)):
            entry = queue.entries[index]
            if entry.position != index + 1:
                entry.position = index + 1
                outbox.updated("queue_entry_updated", entry, ("position",), queue)

    def _channel_gone(self, channel: Channel, reason: str) -> None:
        names = self.store.queued.get(channel.uniqueid)
        if not names:
            return
        for name in list(names):
            queue = self.store.queues.get(name)
            entry = queue.entry(channel.uniqueid) if queue is not None else None
            if queue is not None and entry is not None:
                self.leave(queue, entry, "abandoned" if entry.abandoned else reason)

    # --- events ------------------------------------------------------------------------------

    def on_caller_join(self, event: Message) -> None:
        text = text_of(event)
        name = header(event, "Queue", text)
        snapshot = channel_snapshot(event, "", text)
        if not name or snapshot is None:
            return
        channel = self.channels.seen(snapshot)
        if channel is None:
            return
        queue = self.queue(name)
        if queue.entry(channel.uniqueid) is None:
            position = to_int(header(event, "Position", text) or "", len(queue.entries) + 1)
            entry = QueueEntry(
                channel.uniqueid, channel.name, channel, position, self.store.clock.seconds()
            )
            self.join(queue, entry)
        self.store.outbox.flush()

    def _entry(self, event: Message, text: str) -> tuple[Queue, QueueEntry] | tuple[None, None]:
        name = header(event, "Queue", text)
        snapshot = channel_snapshot(event, "", text)
        if not name or snapshot is None:
            return None, None
        self.channels.seen(snapshot)
        queue = self.store.queues.get(name)
        if queue is None:
            self.queue(name)
            return None, None
        entry = queue.entry(snapshot[UNIQUEID])
        if entry is None:
            return None, None
        return queue, entry

    def on_caller_leave(self, event: Message) -> None:
        queue, entry = self._entry(event, text_of(event))
        if queue is not None and entry is not None:
            self.leave(queue, entry, "abandoned" if entry.abandoned else "left")
        self.store.outbox.flush()

    def on_caller_abandon(self, event: Message) -> None:
        text = text_of(event)
        name = header(event, "Queue", text)
        if not name:
            return
        queue = self.queue(name)
        holdtime = to_int(header(event, "HoldTime", text) or "0")
        queue.abandoned += 1
        changed = ["abandoned"]
        if holdtime <= queue.service_level:
            queue._abandoned_in_sl += 1
        changed += queue.recompute_perf()
        self._updated(queue, changed)
        _, entry = self._entry(event, text)
        if entry is not None:
            entry.abandoned = True
        self.store.outbox.flush()

    def on_member(self, event: Message) -> None:
        text = text_of(event)
        name = header(event, "Queue", text)
        if name:
            self.member(self.queue(name), event, text, row=False)
            self.store.outbox.flush()

    def on_member_removed(self, event: Message) -> None:
        text = text_of(event)
        name = header(event, "Queue", text)
        queue = self.store.queues.get(name or "")
        interface = header(event, "Interface", text)
        if queue is not None and interface:
            member = queue.members.get(interface)
            if member is not None:
                self.remove_member(queue, member, "removed")
                self.store.outbox.flush()

    def on_agent_connect(self, event: Message) -> None:
        text = text_of(event)
        name = header(event, "Queue", text)
        if not name:
            return
        queue = self.queue(name)
        holdtime = to_int(header(event, "HoldTime", text) or "0")
        # app_queue's recalc_holdtime: the first call sets it, then 3/4 old + 1/4 new.
        if queue.completed + queue.abandoned == 0:
            new = holdtime
        else:
            new = (3 * queue.holdtime + holdtime) >> 2
        if new != queue.holdtime:
            queue.holdtime = new
            self._updated(queue, ("holdtime",))
        interface = header(event, "Interface", text)
        if interface:
            if len(queue._connected_in_sl) > 4 * len(queue.members) + 64:
                queue._connected_in_sl.clear()
            queue._connected_in_sl[interface] = holdtime <= queue.service_level
            self._set_in_call(queue, interface, True)
        self.store.outbox.flush()

    def on_agent_complete(self, event: Message) -> None:
        text = text_of(event)
        name = header(event, "Queue", text)
        if not name:
            return
        queue = self.queue(name)
        talktime = to_int(header(event, "TalkTime", text) or "0")
        queue.completed += 1
        changed = ["completed"]
        # app_queue's update_queue: the first completed call sets it, then 3/4 old + 1/4 new.
        new = talktime if queue.completed == 1 else (3 * queue.talktime + talktime) >> 2
        if new != queue.talktime:
            queue.talktime = new
            changed.append("talktime")
        interface = header(event, "Interface", text) or ""
        if queue._connected_in_sl.pop(interface, False):
            queue._completed_in_sl += 1
        changed += queue.recompute_perf()
        self._updated(queue, changed)
        self._set_in_call(queue, interface, False)
        self.store.outbox.flush()

    def _set_in_call(self, queue: Queue, interface: str, in_call: bool) -> None:
        """
        A member's InCall as app_queue keeps it: set when it answers a caller
        (``member->starttime``, with no event of its own) and cleared when the
        call completes (``update_queue``, a QueueMemberStatus follows).
        """
        member = queue.members.get(interface)
        if member is not None and member.in_call != in_call:
            member.in_call = in_call
            self.store.outbox.updated("queue_member_updated", member, ["in_call"], queue)

    # --- QueueStatus rows --------------------------------------------------------------------

    def apply_status(self, rows: list[Message], absent_reason: str, every_queue: bool) -> None:
        """
        Make the model what ``QueueStatus`` rows say: parameters, members
        (absent ones removed), entries (absent ones leave with
        ``absent_reason``).  ``every_queue``: the rows list all queues, so a
        queue they do not name is gone.
        """
        store = self.store
        now = store.clock.seconds()
        seen: dict[str, tuple[set[str], list[Message]]] = {}
        current: Queue | None = None
        members: set[str] = set()
        entries: list[Message] = []
        for row in rows:
            text = text_of(row)
            kind = row.name
            name = header(row, "Queue", text)
            if not name:
                continue
            if kind == "QueueParams":
                current = self.queue(name, ask=False)
                members, entries = set(), []
                seen[name] = (members, entries)
                changed = current.apply_params(row, text)
                if changed is not None:
                    self._updated(current, changed)
            elif current is not None and current.name == name:
                if kind == "QueueMember":
                    member = self.member(current, row, text, row=True)
                    if member is not None:
                        members.add(member.interface)
                elif kind == "QueueEntry":
                    entries.append(row)
        for name, (members, entries) in seen.items():
            queue = store.queues[name]
            for interface, member in list(queue.members.items()):
                if interface not in members:
                    self.remove_member(queue, member, absent_reason)
            self._apply_entries(queue, entries, absent_reason, now)
        if every_queue:
            for name, queue in list(store.queues.items()):
                if name not in seen:
                    self.gone(queue, absent_reason)

    def _apply_entries(
        self, queue: Queue, rows: list[Message], absent_reason: str, now: float
    ) -> None:
        listed: dict[str, Message] = {}
        for row in rows:
            uniqueid = row.get("Uniqueid")
            if uniqueid and uniqueid not in self.store.channel_tombstones:
                listed[uniqueid] = row
        for entry in list(queue.entries):
            if entry.uniqueid not in listed:
                self.leave(queue, entry, absent_reason)
        for uniqueid, row in listed.items():
            position = to_int(row.get("Position") or "", len(queue.entries) + 1)
            found = queue.entry(uniqueid)
            if found is None:
                wait = to_int(row.get("Wait") or "0")
                channel = self.store.channels.get(uniqueid)
                name = row.get("Channel") or (channel.name if channel else "")
                entry = QueueEntry(uniqueid, name, channel, position, now - wait)
                entry.priority = to_int(row.get("Priority") or "0")
                self.join(queue, entry)
            else:
                priority = to_int(row.get("Priority") or "0")
                if priority != found.priority:
                    found.priority = priority
                    self.store.outbox.updated("queue_entry_updated", found, ("priority",), queue)
        # Asterisk's order is authoritative.
        order = {uid: to_int(r.get("Position") or "0") for uid, r in listed.items()}
        queue.entries.sort(key=lambda e: order.get(e.uniqueid, 0))
        self._renumber(queue, 0)
