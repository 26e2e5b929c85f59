"""
Actions on channels: Originate, Hangup, Redirect, AbsoluteTimeout, the Monitor trio,
Status, CoreShowChannels, Getvar and Setvar.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from twisted.internet.defer import Deferred

from txami.testing import permissions as perm
from txami.testing.actions.common import (
    ack,
    complete,
    error,
    id_pairs,
    item,
    list_start,
    scan_int,
    true,
)
from txami.testing.handler import Action, ActionEntry, Handler, Pairs, Session
from txami.testing.pbx import Bridge, Channel

__all__ = ["ENTRIES"]

_SYSTEM_APPS = ("system", "exec", "agi", "mixmonitor", "externalivr", "originate")
_DANGEROUS_FUNCTIONS = ("SHELL(", "FILE(", "EVAL(")
_S, _C, _R = perm.SYSTEM, perm.CALL, perm.REPORTING


def _originate(session: Session, action: Action) -> Deferred[None] | None:
    fake = session.factory
    channel = action.get("Channel")
    exten = action.get("Exten")
    context = action.get("Context")
    application = action.get("Application")
    data = action.get("Data")
    if not channel:
        error(session, action, "Channel not specified")
        return None
    priority = 0
    if action.get("Priority"):
        found = scan_int(action.get("Priority"))
        if found is None:
            error(session, action, "Invalid priority")
            return None
        priority = found
    timeout = 30000
    if action.get("Timeout"):
        found = scan_int(action.get("Timeout"))
        if found is None:
            error(session, action, "Invalid timeout")
            return None
        timeout = found
    if "/" not in channel:
        error(session, action, "Invalid channel")
        return None
    if application and not session.write_mask & perm.SYSTEM:
        low = application.lower()
        if any(word in low for word in _SYSTEM_APPS) or "SHELL" in data or "EVAL" in data:
            error(session, action, "Originate Access Forbidden: app or data blacklisted")
            return None
    if not application and not priority:
        error(session, action, "Originate with 'Exten' requires 'Context' and 'Priority'")
        return None
    variables: Pairs = []
    for value in action.getall("Variable"):
        for assignment in value.split(","):
            name, equals, setting = assignment.partition("=")
            if equals and name:
                variables.append((name, setting))
    caller_id = action.get("CallerID")
    action_id = action.action_id
    seconds = (timeout if timeout > 0 else 30000) / 1000.0

    def start(done: Callable[[bool, int, Channel | None], None]) -> None:
        fake.pbx.originate(
            channel,
            exten=exten,
            context=context,
            priority=priority,
            application=application,
            data=data,
            timeout=seconds,
            caller_id=caller_id,
            variables=variables,
            account=action.get("Account"),
            done=done,
        )

    if true(action.get("Async")):
        ack(session, action, "Originate successfully queued")

        def report(answered: bool, reason: int, outbound: Channel | None) -> None:
            pairs: Pairs = [("ActionID", action_id)] if action_id else []
            pairs += [
                ("Response", "Success" if answered else "Failure"),
                ("Channel", outbound.name if outbound is not None else channel),
            ]
            if application:
                pairs += [("Application", application), ("Data", data)]
            else:
                pairs += [("Context", context), ("Exten", exten)]
            name, number = ("", "")
            if outbound is not None:
                name, number = outbound.caller_name, outbound.caller_num
            pairs += [
                ("Reason", str(reason)),
                ("Uniqueid", outbound.uniqueid if outbound is not None else "<unknown>"),
                ("CallerIDNum", number or "<unknown>"),
                ("CallerIDName", name or "<unknown>"),
            ]
            fake.pbx.emit("OriginateResponse", pairs)

        start(report)
        return None
    answered: Deferred[bool] = Deferred()

    def finish(ok: bool) -> None:
        if ok:
            ack(session, action, "Originate successfully queued")
        else:
            error(session, action, "Originate failed")

    start(lambda ok, reason, outbound: answered.callback(ok))
    return answered.addCallback(finish)


def _hangup(session: Session, action: Action) -> None:
    pbx = session.factory.pbx
    name = action.get("Channel")
    if not name:
        error(session, action, "No channel specified")
        return
    cause = 0
    if action.get("Cause"):
        found = scan_int(action.get("Cause"))
        cause = found if found is not None and 0 <= found <= 127 else 0
    if len(name) > 2 and name.startswith("/") and name.endswith("/"):
        pattern = name[1:-1]
        try:
            regex = re.compile(pattern)
        except re.error:
            error(session, action, f"Regex compile failed on: {pattern}")
            return
        matched = [channel for channel in pbx.channels.values() if regex.search(channel.name)]
        list_start(session, action, "Channels hung up will follow")
        for channel in matched:
            item(session, "ChannelHungup", [("Channel", channel.name), *id_pairs(action)])
        complete(session, action, "ChannelsHungupListComplete", len(matched))
        for channel in matched:
            pbx.hangup(channel, cause)
        return
    found_channel = pbx.channel(name)
    if found_channel is None:
        error(session, action, "No such channel")
        return
    ack(session, action, "Channel Hungup")
    pbx.hangup(found_channel, cause)


def _redirect(session: Session, action: Action) -> None:
    pbx = session.factory.pbx
    name = action.get("Channel")
    extra = action.get("ExtraChannel")
    context, exten = action.get("Context"), action.get("Exten")
    for value, what in ((name, "Channel"), (context, "Context"), (exten, "Exten")):
        if not value:
            error(session, action, f"{what} not specified")
            return
    if not action.get("Priority"):
        error(session, action, "Priority not specified")
        return
    priority = scan_int(action.get("Priority"))
    if priority is None or priority < 1:
        error(session, action, "Priority is invalid")
        return
    channel = pbx.channel(name)
    if channel is None:
        error(session, action, f"Channel does not exist: {name}")
        return
    second = None
    if extra:
        second = pbx.channel(extra)
        if second is None:
            error(session, action, f"Channel does not exist: {extra}")
            return
    ack(session, action, "Dual Redirect successful" if second else "Redirect successful")
    if second is None:
        pbx.redirect(channel, context, exten, priority)
        return
    extra_priority = scan_int(action.get("ExtraPriority") or "") or priority
    pbx.redirect_pair(
        (channel, context, exten, priority),
        (
            second,
            action.get("ExtraContext") or context,
            action.get("ExtraExten") or exten,
            extra_priority,
        ),
    )


def _absolute_timeout(session: Session, action: Action) -> None:
    pbx = session.factory.pbx
    name = action.get("Channel")
    if not name:
        error(session, action, "No channel specified")
        return
    channel = pbx.channel(name)
    if channel is None:
        error(session, action, "No such channel")
        return
    seconds = scan_int(action.get("Timeout")) or 0
    pbx.hangup_later(channel, float(seconds))
    ack(session, action, "Timeout Set")


def _monitor_action(message: str, needs_file: bool = False) -> Handler:
    def handle(session: Session, action: Action) -> None:
        name = action.get("Channel")
        if not name:
            error(session, action, "No channel specified")
        elif needs_file and not action.get("File"):
            error(session, action, "No filename specified")
        elif session.factory.pbx.channel(name) is None:
            error(session, action, "No such channel")
        else:
            ack(session, action, message)

    return handle


def _status_event(session: Session, action: Action, channel: Channel) -> Pairs:
    pbx = session.factory.pbx
    pairs: Pairs = [("Privilege", "Call"), *channel.snapshot()]
    formats = "(slin)" if channel.technology == "Local" else "(ulaw)"
    read = formats.strip("()")
    pairs += [
        ("Type", channel.technology),
        ("DNID", ""),
        ("EffectiveConnectedLineNum", channel.connected_num or "<unknown>"),
        ("EffectiveConnectedLineName", channel.connected_name or "<unknown>"),
        ("TimeToHangup", "0"),
        ("BridgeID", bridge_id(channel)),
        ("Application", channel.application),
        ("Data", channel.data),
        ("Nativeformats", formats),
        ("Readformat", read),
        ("Readtrans", ""),
        ("Writeformat", read),
        ("Writetrans", ""),
        ("Callgroup", "0"),
        ("Pickupgroup", "0"),
        ("Seconds", str(int(pbx.clock.seconds() - channel.created))),
    ]
    wanted = action.get("Variables")
    if wanted:
        for name in wanted.split(","):
            value = pbx.get_var(channel, name)
            pairs.append(("Variable", f"{name}={'(null)' if value is None else value}"))
    if true(action.get("AllVariables")):
        pairs += [("Variable", f"{k}={v}") for k, v in channel.variables.items()]
    return pairs + id_pairs(action)


def _status(session: Session, action: Action) -> None:
    pbx = session.factory.pbx
    name = action.get("Channel")
    if name:
        found = pbx.channel(name)
        if found is None:
            error(session, action, "No such channel")
            return
        channels = [found]
    else:
        channels = list(pbx.channels.values())
    list_start(session, action, "Channel status will follow")
    for channel in channels:
        item(session, "Status", _status_event(session, action, channel))
    count = str(len(channels))
    complete(session, action, "StatusComplete", len(channels), ("Items", count))


def bridge_id(channel: Channel) -> str:
    """The BridgeUniqueid of the bridge ``channel`` is in ("" if none)."""
    return channel.bridge.uniqueid if isinstance(channel.bridge, Bridge) else ""


def _core_show_channels(session: Session, action: Action) -> None:
    pbx = session.factory.pbx
    list_start(session, action, "Channels will follow")
    now = pbx.clock.seconds()
    channels = list(pbx.channels.values())
    for channel in channels:
        seconds = int(now - channel.created)
        duration = f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
        item(
            session,
            "CoreShowChannel",
            [
                *id_pairs(action),
                *channel.snapshot(),
                ("Application", channel.application),
                ("ApplicationData", channel.data),
                ("Duration", duration),
                ("BridgeId", bridge_id(channel)),
            ],
        )
    complete(session, action, "CoreShowChannelsComplete", len(channels))


def _getvar(session: Session, action: Action) -> None:
    pbx = session.factory.pbx
    variable = action.get("Variable")
    if not variable:
        error(session, action, "No variable specified")
        return
    if not session.write_mask & perm.SYSTEM and variable.upper().startswith(_DANGEROUS_FUNCTIONS):
        error(session, action, "GetVar Access Forbidden: Variable")
        return
    channel = None
    if action.get("Channel"):
        channel = pbx.channel(action.get("Channel"))
        if channel is None:
            error(session, action, "No such channel")
            return
    value = pbx.get_var(channel, variable)
    ack(session, action, None, ("Variable", variable), ("Value", value or ""))


def _setvar(session: Session, action: Action) -> None:
    pbx = session.factory.pbx
    variable = action.get("Variable")
    if not variable:
        error(session, action, "No variable specified")
        return
    channel = None
    if action.get("Channel"):
        channel = pbx.channel(action.get("Channel"))
        if channel is None:
            error(session, action, "No such channel")
            return
    ack(session, action, "Variable Set")
    pbx.set_var(channel, variable, action.get("Value"))


#: The actions of this module.
ENTRIES = [
    ActionEntry("AbsoluteTimeout", _absolute_timeout, _S | _C, "Set absolute timeout."),
    ActionEntry(
        "ChangeMonitor",
        _monitor_action("Changed monitor filename", needs_file=True),
        _C,
        "Change monitoring filename of a channel.",
    ),
    ActionEntry(
        "CoreShowChannels", _core_show_channels, _S | _R, "List currently active channels."
    ),
    ActionEntry("Getvar", _getvar, _C | _R, "Gets a channel variable or function value."),
    ActionEntry("Hangup", _hangup, _S | _C, "Hangup channel."),
    ActionEntry(
        "Monitor", _monitor_action("Started monitoring channel"), _C, "Monitor a channel."
    ),
    ActionEntry("Originate", _originate, perm.ORIGINATE, "Originate a call."),
    ActionEntry("Redirect", _redirect, _C, "Redirect (transfer) a call."),
    ActionEntry("Setvar", _setvar, _C, "Sets a channel variable or function value."),
    ActionEntry("Status", _status, _S | _C | _R, "List channel status."),
    ActionEntry(
        "StopMonitor",
        _monitor_action("Stopped monitoring channel"),
        _C,
        "Stop monitoring a channel.",
    ),
]
