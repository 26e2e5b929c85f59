"""
The actions `FakeAsterisk` answers by itself, worded as Asterisk 20 words them.

Each handler gets the session and the `Action` (its raw lines, looked up the
way Asterisk does) and writes its answer through the session; an answer that
comes later (a synchronous Originate) is returned as a Deferred.  `BUILTIN`
maps each action name to its handler, the write classes it needs (as in
``ListCommands``) and its synopsis.  The handlers live in one module per
concept: `session` (login, events, CLI, the core), `channels`, `bridges`
(bridges, transfers, parking, conferences), `queues`, `states` (devices,
hints, presence) and `data` (database, voicemail, IAX2).  Tests script other
actions with ``FakeAsterisk.add_action``; `response` builds the usual reply
for them.
"""

from __future__ import annotations

from txami.testing.actions import bridges, channels, data, queues, session, states
from txami.testing.actions.common import response
from txami.testing.handler import Action, ActionEntry

__all__ = ["Action", "ActionEntry", "response"]

#: The built-in actions: lower-cased name -> entry.
BUILTIN: dict[str, ActionEntry] = {
    entry.name.lower(): entry
    for module in (session, channels, bridges, queues, states, data)
    for entry in module.ENTRIES
}
