"""
The actions `FakeAsterisk` answers by itself, worded as Asterisk 20 words them.

Each handler gets the session and the `Action` (its raw lines, looked up the
way Asterisk does) and writes its answer through the session; an answer that
comes later (a synchronous Originate) is returned as a Deferred.  `BUILTIN`
maps each action name to its handler, the write classes it needs (as in
``ListCommands``) and its synopsis.  Tests script other actions with
``FakeAsterisk.add_action``; `response` builds the usual reply for them.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Sequence

from twisted.internet.defer import Deferred

from txami.message import Message
from txami.testing import permissions as perm
from txami.testing.cli import run_command
from txami.testing.handler import Action, ActionEntry, Handler, Pairs, Session
from txami.testing.pbx import Channel

__all__ = ["BUILTIN", "Action", "ActionEntry", "Pairs", "response"]


_TRUE = frozenset({"yes", "true", "y", "t", "1", "on"})
_INT = re.compile(r"\s*([+-]?\d+)")
_BLACKLISTED_COMMANDS = (("module", "load"), ("module", "unload"), ("restart", "gracefully"))
_SYSTEM_APPS = ("system", "exec", "agi", "mixmonitor", "externalivr", "originate")
_DANGEROUS_FUNCTIONS = ("SHELL(", "FILE(", "EVAL(")


def response(
    action: Message,
    message: str | None = None,
    *,
    status: str = "Success",
    headers: Sequence[tuple[str, str]] = (),
) -> Message:
    """
    The reply to ``action`` as Asterisk shapes one: ``Response``, the action's
    ``ActionID`` (if it had one), ``Message`` (if given), then ``headers``.
    For handlers given to ``FakeAsterisk.add_action``.
    """
    pairs: Pairs = [("Response", status)]
    action_id = action.get("ActionID")
    if action_id:
        pairs.append(("ActionID", action_id))
    if message is not None:
        pairs.append(("Message", message))
    pairs.extend(headers)
    return Message(pairs)


# --- writing answers ------------------------------------------------------------------


def _id(action: Action) -> Pairs:
    action_id = action.action_id
    return [("ActionID", action_id)] if action_id else []


def _success(
    session: Session, action: Action, message: str | None = None, *extra: tuple[str, str]
) -> None:
    pairs: Pairs = [("Response", "Success"), *_id(action)]
    if message is not None:
        pairs.append(("Message", message))
    pairs.extend(extra)
    session.write_response(pairs)


def _error(session: Session, action: Action, message: str, *extra: tuple[str, str]) -> None:
    session.write_response([("Response", "Error"), *_id(action), ("Message", message), *extra])


def _list_start(session: Session, action: Action, message: str) -> None:
    session.write_response(
        [("Response", "Success"), *_id(action), ("EventList", "start"), ("Message", message)]
    )


def _item(session: Session, event: str, pairs: Pairs) -> None:
    session.write_response([("Event", event), *pairs])


def _complete(
    session: Session, action: Action, event: str, count: int, *extra: tuple[str, str]
) -> None:
    session.write_response(
        [
            ("Event", event),
            *_id(action),
            ("EventList", "Complete"),
            ("ListItems", str(count)),
            *extra,
        ]
    )


def _scan_int(text: str) -> int | None:
    """C's ``sscanf("%d")``: a leading integer, or `None`."""
    match = _INT.match(text)
    return int(match.group(1)) if match else None


def _true(text: str) -> bool:
    return text.strip().lower() in _TRUE


# --- session and login ----------------------------------------------------------------


def _login(session: Session, action: Action) -> None:
    if session.logged_in:
        _success(session, action, "Already authenticated")
        return
    fake = session.factory
    username = action.get("Username")
    user = fake.find_user(username)
    accepted = False
    if user is None:
        session.security_event("InvalidAccountID", "Error", 1, account=username)
    elif action.get("AuthType").lower() == "md5":
        key = action.get("Key")
        if key and session.challenge:
            expected = hashlib.md5((session.challenge + user.secret).encode("utf-8")).hexdigest()
            accepted = key == expected
        if not accepted:
            session.security_event(
                "ChallengeResponseFailed",
                "Error",
                1,
                account=user.username,
                extra=[("Challenge", session.challenge)],
            )
    else:
        accepted = action.get("Secret") == user.secret
        if not accepted:
            session.security_event("InvalidPassword", "Error", 2, account=user.username)
    if user is None or not accepted:
        session.refuse_login(action.action_id)
        return
    session.accept_login(user, action.get("Events"))
    _success(session, action, "Authentication accepted")
    if session.read_mask & perm.SYSTEM and session.event_mask & perm.SYSTEM:
        uptime = str(int(fake.pbx.uptime))
        session.write_response(
            [
                ("Event", "FullyBooted"),
                ("Privilege", perm.class_string(perm.SYSTEM)),
                ("Uptime", uptime),
                ("LastReload", uptime),
                ("Status", "Fully Booted"),
            ]
        )
    session.security_event(
        "SuccessfulAuth", "Informational", 1, account=user.username, extra=[("UsingPassword", "0")]
    )


def _challenge(session: Session, action: Action) -> None:
    if action.get("AuthType").lower() != "md5":
        _error(session, action, "Must specify AuthType")
        return
    if not session.challenge:
        session.challenge = session.factory.new_challenge()
    _success(session, action, None, ("Challenge", session.challenge))


def _logoff(session: Session, action: Action) -> None:
    session.write_response(
        [("Response", "Goodbye"), *_id(action), ("Message", "Thanks for all the fish.")]
    )
    session.close_after_answer()


def _ping(session: Session, action: Action) -> None:
    now = session.factory.pbx.now()
    _success(session, action, None, ("Ping", "Pong"), ("Timestamp", f"{now:.6f}"))


def _events(session: Session, action: Action) -> None:
    mask = perm.event_mask(action.get("EventMask"))
    if mask is None:
        _error(session, action, "Invalid event mask")
        return
    session.event_mask = mask
    session.write_response(
        [("Response", "Success"), *_id(action), ("Events", "On" if mask else "Off")]
    )


def _filter(session: Session, action: Action) -> None:
    if action.get("Operation").lower() != "add":
        _error(session, action, "Unknown operation")
        return
    pattern = action.get("Filter")
    if not pattern:
        _error(
            session,
            action,
            "Filter was formatted incorrectly.  Check the syntax of the filter given.",
        )
        return
    black = pattern.startswith("!")
    try:
        compiled = re.compile(pattern[1:] if black else pattern)
    except re.error:
        _error(session, action, "Filter did not compile.  Check the syntax of the filter given.")
        return
    (session.black_filters if black else session.white_filters).append(compiled)
    _success(session, action, "Success")


def _list_commands(session: Session, action: Action) -> None:
    pairs: Pairs = [("Response", "Success"), *_id(action)]
    entries = sorted(session.factory.actions(), key=lambda entry: entry.name.lower())
    for entry in entries:
        if entry.authority and not session.write_mask & entry.authority:
            continue
        privilege = perm.class_string(entry.authority)
        pairs.append((entry.name, f"{entry.synopsis}  (Priv: {privilege})"))
    session.write_response(pairs)


def _user_event(session: Session, action: Action) -> None:
    name = action.get("UserEvent")
    _success(session, action, "Event Sent")
    body = [
        line
        for line in action.lines
        if line[:10].lower() != "userevent:" and line[:7].lower() != "action:"
    ]
    privilege = perm.class_string(perm.USER)
    text = f"Event: UserEvent\r\nPrivilege: {privilege}\r\nUserEvent: {name}\r\n"
    session.factory.broadcast(perm.USER, text + "".join(f"{line}\r\n" for line in body) + "\r\n")


# --- CLI ----------------------------------------------------------------------------------


def _command(session: Session, action: Action) -> None:
    command = action.get("Command")
    if not command:
        _error(session, action, "No command provided")
        return
    words = tuple(word.lower() for word in command.split())
    if any(words[: len(bad)] == bad for bad in _BLACKLISTED_COMMANDS):
        _error(session, action, "Command blacklisted")
        return
    fake = session.factory
    succeeded, lines = run_command(fake.pbx, command, fake.action_info)
    if fake.command_framing == "follows":
        head = "Response: Follows\r\nPrivilege: Command\r\n"
        action_id = action.action_id
        if action_id:
            head += f"ActionID: {action_id}\r\n"
        body = "".join(f"{line}\n" for line in lines)
        session.write_raw_response(head + body + "--END COMMAND--\r\n\r\n")
        return
    session.write_response(
        [
            ("Response", "Success" if succeeded else "Error"),
            *_id(action),
            ("Message", "Command output follows"),
            *(("Output", line) for line in lines),
        ]
    )


# --- calls ----------------------------------------------------------------------------------


def _originate(session: Session, action: Action) -> Deferred[None] | None:
    fake = session.factory
    channel = action.get("Channel")
    exten = action.get("Exten")
    context = action.get("Context")
    application = action.get("Application")
    data = action.get("Data")
    if not channel:
        _error(session, action, "Channel not specified")
        return None
    priority = 0
    if action.get("Priority"):
        found = _scan_int(action.get("Priority"))
        if found is None:
            _error(session, action, "Invalid priority")
            return None
        priority = found
    timeout = 30000
    if action.get("Timeout"):
        found = _scan_int(action.get("Timeout"))
        if found is None:
            _error(session, action, "Invalid timeout")
            return None
        timeout = found
    if "/" not in channel:
        _error(session, action, "Invalid channel")
        return None
    if application and not session.write_mask & perm.SYSTEM:
        low = application.lower()
        if any(word in low for word in _SYSTEM_APPS) or "SHELL" in data or "EVAL" in data:
            _error(session, action, "Originate Access Forbidden: app or data blacklisted")
            return None
    if not application and not priority:
        _error(session, action, "Originate with 'Exten' requires 'Context' and 'Priority'")
        return None
    variables: Pairs = []
    for value in action.getall("Variable"):
        for item in value.split(","):
            name, equals, setting = item.partition("=")
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

    if _true(action.get("Async")):
        _success(session, action, "Originate successfully queued")

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
            _success(session, action, "Originate successfully queued")
        else:
            _error(session, action, "Originate failed")

    start(lambda ok, reason, outbound: answered.callback(ok))
    return answered.addCallback(finish)


def _hangup(session: Session, action: Action) -> None:
    pbx = session.factory.pbx
    name = action.get("Channel")
    if not name:
        _error(session, action, "No channel specified")
        return
    cause = 0
    if action.get("Cause"):
        found = _scan_int(action.get("Cause"))
        cause = found if found is not None and 0 <= found <= 127 else 0
    if len(name) > 2 and name.startswith("/") and name.endswith("/"):
        pattern = name[1:-1]
        try:
            regex = re.compile(pattern)
        except re.error:
            _error(session, action, f"Regex compile failed on: {pattern}")
            return
        matched = [channel for channel in pbx.channels.values() if regex.search(channel.name)]
        _list_start(session, action, "Channels hung up will follow")
        for channel in matched:
            _item(session, "ChannelHungup", [("Channel", channel.name), *_id(action)])
        _complete(session, action, "ChannelsHungupListComplete", len(matched))
        for channel in matched:
            pbx.hangup(channel, cause, 16)
        return
    found_channel = pbx.channel(name)
    if found_channel is None:
        _error(session, action, "No such channel")
        return
    _success(session, action, "Channel Hungup")
    pbx.hangup(found_channel, cause, 16)


def _redirect(session: Session, action: Action) -> None:
    pbx = session.factory.pbx
    name = action.get("Channel")
    extra = action.get("ExtraChannel")
    context, exten = action.get("Context"), action.get("Exten")
    for value, what in ((name, "Channel"), (context, "Context"), (exten, "Exten")):
        if not value:
            _error(session, action, f"{what} not specified")
            return
    if not action.get("Priority"):
        _error(session, action, "Priority not specified")
        return
    priority = _scan_int(action.get("Priority"))
    if priority is None or priority < 1:
        _error(session, action, "Priority is invalid")
        return
    channel = pbx.channel(name)
    if channel is None:
        _error(session, action, f"Channel does not exist: {name}")
        return
    second = None
    if extra:
        second = pbx.channel(extra)
        if second is None:
            _error(session, action, f"Channel does not exist: {extra}")
            return
    _success(session, action, "Dual Redirect successful" if second else "Redirect successful")
    pbx.redirect(channel, context, exten, priority)
    if second is not None:
        extra_priority = _scan_int(action.get("ExtraPriority") or "") or priority
        pbx.redirect(
            second,
            action.get("ExtraContext") or context,
            action.get("ExtraExten") or exten,
            extra_priority,
        )


def _absolute_timeout(session: Session, action: Action) -> None:
    pbx = session.factory.pbx
    name = action.get("Channel")
    if not name:
        _error(session, action, "No channel specified")
        return
    channel = pbx.channel(name)
    if channel is None:
        _error(session, action, "No such channel")
        return
    seconds = _scan_int(action.get("Timeout")) or 0
    pbx.hangup_later(channel, float(seconds))
    _success(session, action, "Timeout Set")


def _monitor_action(message: str, needs_file: bool = False) -> Handler:
    def handle(session: Session, action: Action) -> None:
        name = action.get("Channel")
        if not name:
            _error(session, action, "No channel specified")
        elif needs_file and not action.get("File"):
            _error(session, action, "No filename specified")
        elif session.factory.pbx.channel(name) is None:
            _error(session, action, "No such channel")
        else:
            _success(session, action, message)

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
        ("BridgeID", ""),
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
    if _true(action.get("AllVariables")):
        pairs += [("Variable", f"{k}={v}") for k, v in channel.variables.items()]
    return pairs + _id(action)


def _status(session: Session, action: Action) -> None:
    pbx = session.factory.pbx
    name = action.get("Channel")
    if name:
        found = pbx.channel(name)
        if found is None:
            _error(session, action, "No such channel")
            return
        channels = [found]
    else:
        channels = list(pbx.channels.values())
    _list_start(session, action, "Channel status will follow")
    for channel in channels:
        _item(session, "Status", _status_event(session, action, channel))
    count = str(len(channels))
    _complete(session, action, "StatusComplete", len(channels), ("Items", count))


def _core_show_channels(session: Session, action: Action) -> None:
    pbx = session.factory.pbx
    _list_start(session, action, "Channels will follow")
    now = pbx.clock.seconds()
    channels = list(pbx.channels.values())
    for channel in channels:
        seconds = int(now - channel.created)
        duration = f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
        _item(
            session,
            "CoreShowChannel",
            [
                *_id(action),
                *channel.snapshot(),
                ("Application", channel.application),
                ("ApplicationData", channel.data),
                ("Duration", duration),
                ("BridgeId", ""),
            ],
        )
    _complete(session, action, "CoreShowChannelsComplete", len(channels))


# --- variables and database -----------------------------------------------------------------


def _getvar(session: Session, action: Action) -> None:
    pbx = session.factory.pbx
    variable = action.get("Variable")
    if not variable:
        _error(session, action, "No variable specified")
        return
    if not session.write_mask & perm.SYSTEM and variable.upper().startswith(_DANGEROUS_FUNCTIONS):
        _error(session, action, "GetVar Access Forbidden: Variable")
        return
    channel = None
    if action.get("Channel"):
        channel = pbx.channel(action.get("Channel"))
        if channel is None:
            _error(session, action, "No such channel")
            return
    value = pbx.get_var(channel, variable)
    _success(session, action, None, ("Variable", variable), ("Value", value or ""))


def _setvar(session: Session, action: Action) -> None:
    pbx = session.factory.pbx
    variable = action.get("Variable")
    if not variable:
        _error(session, action, "No variable specified")
        return
    channel = None
    if action.get("Channel"):
        channel = pbx.channel(action.get("Channel"))
        if channel is None:
            _error(session, action, "No such channel")
            return
    _success(session, action, "Variable Set")
    pbx.set_var(channel, variable, action.get("Value"))


def _db_get(session: Session, action: Action) -> None:
    family, key = action.get("Family"), action.get("Key")
    if not family:
        _error(session, action, "No family specified.")
        return
    if not key:
        _error(session, action, "No key specified.")
        return
    value = session.factory.pbx.db.get(f"/{family}/{key}")
    if value is None:
        _error(session, action, "Database entry not found")
        return
    _list_start(session, action, "Result will follow")
    _item(
        session, "DBGetResponse", [("Family", family), ("Key", key), ("Val", value), *_id(action)]
    )
    _complete(session, action, "DBGetComplete", 1)


def _db_get_tree(session: Session, action: Action) -> None:
    family, key = action.get("Family"), action.get("Key")
    prefix = "/" + family if family else ""
    if family and key:
        prefix += "/" + key
    rows = [
        (k, v)
        for k, v in sorted(session.factory.pbx.db.items())
        if not prefix or k == prefix or k.startswith(prefix + "/")
    ]
    if not rows:
        _error(session, action, "Database entry not found")
        return
    _list_start(session, action, "Result will follow")
    for name, value in rows:
        _item(session, "DBGetTreeResponse", [("Key", name), ("Val", value), *_id(action)])
    _complete(session, action, "DBGetTreeComplete", len(rows))


def _db_put(session: Session, action: Action) -> None:
    family, key = action.get("Family"), action.get("Key")
    if not family:
        _error(session, action, "No family specified")
        return
    if not key:
        _error(session, action, "No key specified")
        return
    session.factory.pbx.db[f"/{family}/{key}"] = action.get("Val")
    _success(session, action, "Updated database successfully")


def _db_del(session: Session, action: Action) -> None:
    family, key = action.get("Family"), action.get("Key")
    if not family:
        _error(session, action, "No family specified.")
        return
    if not key:
        _error(session, action, "No key specified.")
        return
    if session.factory.pbx.db.pop(f"/{family}/{key}", None) is None:
        _error(session, action, "Database entry could not be deleted")
        return
    _success(session, action, "Key deleted successfully")


def _db_del_tree(session: Session, action: Action) -> None:
    family, key = action.get("Family"), action.get("Key")
    if not family:
        _error(session, action, "No family specified.")
        return
    prefix = f"/{family}/{key}" if key else f"/{family}"
    db = session.factory.pbx.db
    doomed = [k for k in db if k == prefix or k.startswith(prefix + "/")]
    if not doomed:
        _error(session, action, "Database entry not found")
        return
    for name in doomed:
        del db[name]
    _success(session, action, "Key tree deleted successfully")


# --- mailboxes, hints and devices -------------------------------------------------------------


def _mailbox_count(session: Session, action: Action) -> None:
    spec = action.get("Mailbox")
    if not spec:
        _error(session, action, "Mailbox not specified")
        return
    _, box = session.factory.pbx.mailbox(spec)
    _success(
        session,
        action,
        "Mailbox Message Count",
        ("Mailbox", spec),
        ("UrgMessages", str(box.urgent)),
        ("NewMessages", str(box.new)),
        ("OldMessages", str(box.old)),
    )


def _mailbox_status(session: Session, action: Action) -> None:
    spec = action.get("Mailbox")
    if not spec:
        _error(session, action, "Mailbox not specified")
        return
    _, box = session.factory.pbx.mailbox(spec)
    _success(
        session,
        action,
        "Mailbox Status",
        ("Mailbox", spec),
        ("Waiting", "1" if box.new or box.urgent else "0"),
    )


def _voicemail_users(session: Session, action: Action) -> None:
    boxes = session.factory.pbx.mailboxes
    _list_start(session, action, "Voicemail user list will follow")
    for spec, box in boxes.items():
        number, _, context = spec.partition("@")
        _item(
            session,
            "VoicemailUserEntry",
            [
                *_id(action),
                ("VMContext", context),
                ("VoiceMailbox", number),
                ("Fullname", box.fullname),
                ("Email", box.email),
                ("Pager", ""),
                ("ServerEmail", "asterisk@localhost"),
                ("FromString", ""),
                ("MailCommand", "/usr/sbin/sendmail -t"),
                ("Language", ""),
                ("TimeZone", ""),
                ("Callback", ""),
                ("Dialout", ""),
                ("UniqueID", ""),
                ("ExitContext", ""),
                ("SayDurationMinimum", "2"),
                ("SayEnvelope", "Yes"),
                ("SayCID", "No"),
                ("AttachMessage", "No"),
                ("AttachmentFormat", ""),
                ("DeleteMessage", "No"),
                ("VolumeGain", "0.00"),
                ("CanReview", "No"),
                ("CanMarkUrgent", "Yes"),
                ("CallOperator", "No"),
                ("MaxMessageCount", "100"),
                ("MaxMessageLength", "180"),
                ("NewMessageCount", str(box.new)),
                ("OldMessageCount", str(box.old)),
            ],
        )
    _complete(session, action, "VoicemailUserEntryComplete", len(boxes))


def _extension_state(session: Session, action: Action) -> None:
    exten = action.get("Exten")
    context = action.get("Context") or "default"
    _success(
        session,
        action,
        "Extension Status",
        *session.factory.pbx.extension_status(context, exten),
    )


def _extension_state_list(session: Session, action: Action) -> None:
    pbx = session.factory.pbx
    _list_start(session, action, "Extension Statuses will follow")
    hints = list(reversed(pbx.hints.items()))
    for (context, exten), _ in hints:
        _item(session, "ExtensionStatus", [*_id(action), *pbx.extension_status(context, exten)])
    _complete(session, action, "ExtensionStateListComplete", len(hints))


def _device_state_list(session: Session, action: Action) -> None:
    states = session.factory.pbx.device_states
    _list_start(session, action, "Device State Changes will follow")
    for device, state in states.items():
        _item(session, "DeviceStateChange", [*_id(action), ("Device", device), ("State", state)])
    _complete(session, action, "DeviceStateListComplete", len(states))


# --- queues and IAX -----------------------------------------------------------------------------


def _queue_status(session: Session, action: Action) -> None:
    pbx = session.factory.pbx
    wanted, member_filter = action.get("Queue"), action.get("Member")
    _list_start(session, action, "Queue status will follow")
    count = 0
    now = pbx.clock.seconds()
    for queue in pbx.queues.values():
        if wanted and queue.name != wanted:
            continue
        count += 1
        _item(
            session,
            "QueueParams",
            [
                ("Queue", queue.name),
                ("Max", str(queue.max)),
                ("Strategy", queue.strategy),
                ("Calls", str(len(queue.callers))),
                ("Holdtime", str(queue.hold_time)),
                ("TalkTime", str(queue.talk_time)),
                ("Completed", str(queue.completed)),
                ("Abandoned", str(queue.abandoned)),
                ("ServiceLevel", str(queue.service_level)),
                ("ServicelevelPerf", "0.0"),
                ("ServicelevelPerf2", "0.0"),
                ("Weight", str(queue.weight)),
                *_id(action),
            ],
        )
        for member in queue.members:
            if member_filter and member_filter not in (member.interface, member.name):
                continue
            count += 1
            _item(
                session,
                "QueueMember",
                [
                    ("Queue", queue.name),
                    ("Name", member.name or member.interface),
                    ("Location", member.interface),
                    ("StateInterface", member.state_interface or member.interface),
                    ("Membership", member.membership),
                    ("Penalty", str(member.penalty)),
                    ("CallsTaken", str(member.calls_taken)),
                    ("LastCall", str(member.last_call)),
                    ("LastPause", "0"),
                    ("LoginTime", str(member.login_time)),
                    ("InCall", "1" if member.in_call else "0"),
                    ("Status", str(member.status)),
                    ("Paused", "1" if member.paused else "0"),
                    ("PausedReason", ""),
                    ("Wrapuptime", "0"),
                    *_id(action),
                ],
            )
        for position, caller in enumerate(queue.callers, 1):
            count += 1
            _item(
                session,
                "QueueEntry",
                [
                    ("Queue", queue.name),
                    ("Position", str(position)),
                    ("Channel", caller.name),
                    ("Uniqueid", caller.uniqueid),
                    ("CallerIDNum", caller.caller_num or "<unknown>"),
                    ("CallerIDName", caller.caller_name or "<unknown>"),
                    ("ConnectedLineNum", caller.connected_num or "<unknown>"),
                    ("ConnectedLineName", caller.connected_name or "<unknown>"),
                    ("Wait", str(int(now - caller.created))),
                    ("Priority", "0"),
                    *_id(action),
                ],
            )
    _complete(session, action, "QueueStatusComplete", count)


def _queue_summary(session: Session, action: Action) -> None:
    pbx = session.factory.pbx
    wanted = action.get("Queue")
    _list_start(session, action, "Queue summary will follow")
    count = 0
    for queue in pbx.queues.values():
        if wanted and queue.name != wanted:
            continue
        count += 1
        available = sum(1 for m in queue.members if not m.paused and not m.in_call)
        _item(
            session,
            "QueueSummary",
            [
                ("Queue", queue.name),
                ("LoggedIn", str(len(queue.members))),
                ("Available", str(available)),
                ("Callers", str(len(queue.callers))),
                ("HoldTime", str(queue.hold_time)),
                ("TalkTime", str(queue.talk_time)),
                ("LongestHoldTime", "0"),
                *_id(action),
            ],
        )
    _complete(session, action, "QueueSummaryComplete", count)


def _iax_peers(session: Session, action: Action) -> None:
    peers = session.factory.pbx.iax_peers
    _list_start(session, action, "Peer status list will follow")
    for peer in peers:
        # As in chan_iax2: these rows never carry the ActionID.
        _item(
            session,
            "PeerEntry",
            [
                ("Channeltype", "IAX2"),
                ("ObjectName", peer.name),
                ("ChanObjectType", "peer"),
                ("IPaddress", peer.host or "(null)"),
                ("IPport", str(peer.port) if peer.host else "(null)"),
                ("Dynamic", "no" if peer.host else "yes"),
                ("Trunk", "yes" if peer.trunk else "no"),
                ("Encryption", "yes" if peer.encryption else "no"),
                ("Status", peer.status),
                ("Description", peer.description),
            ],
        )
    _complete(session, action, "PeerlistComplete", len(peers))


def _iax_peer_list(session: Session, action: Action) -> None:
    peers = session.factory.pbx.iax_peers
    _list_start(session, action, "IAX Peer status list will follow")
    for peer in peers:
        _item(
            session,
            "PeerEntry",
            [
                *_id(action),
                ("Channeltype", "IAX"),
                ("ObjectName", peer.name),
                ("ChanObjectType", "peer"),
                ("IPaddress", peer.host or "(null)"),
                ("Mask", "255.255.255.255" if peer.host else "(null)"),
                ("Port", str(peer.port) if peer.host else "(null)"),
                ("Dynamic", "no" if peer.host else "yes"),
                ("Trunk", "yes" if peer.trunk else "no"),
                ("Encryption", "yes" if peer.encryption else "no"),
                ("Status", peer.status),
            ],
        )
    _complete(session, action, "PeerlistComplete", len(peers))


def _iax_registry(session: Session, action: Action) -> None:
    _list_start(session, action, "Registrations will follow")
    _complete(session, action, "RegistrationsComplete", 0)


def _iax_netstats(session: Session, action: Action) -> None:
    # chan_iax2 answers with a lone line end: no Response, no ActionID.
    session.write_raw_response("\r\n")


# --- the core ---------------------------------------------------------------------------------


def _core_settings(session: Session, action: Action) -> None:
    fake = session.factory
    _success(
        session,
        action,
        None,
        ("AMIversion", fake.ami_version),
        ("AsteriskVersion", fake.pbx.asterisk_version),
        ("SystemName", ""),
        ("CoreMaxCalls", "500"),
        ("CoreMaxLoadAvg", "0.000000"),
        ("CoreRunUser", ""),
        ("CoreRunGroup", ""),
        ("CoreMaxFilehandles", "4096"),
        ("CoreRealTimeEnabled", "No"),
        ("CoreCDRenabled", "Yes"),
        ("CoreHTTPenabled", "No"),
        ("SoundsSearchCustomDir", "No"),
    )


def _core_status(session: Session, action: Action) -> None:
    pbx = session.factory.pbx
    started = time.gmtime(pbx.start_time)
    date, clock = time.strftime("%Y-%m-%d", started), time.strftime("%H:%M:%S", started)
    calls = len({channel.linkedid for channel in pbx.channels.values()})
    _success(
        session,
        action,
        None,
        ("CoreStartupDate", date),
        ("CoreStartupTime", clock),
        ("CoreReloadDate", date),
        ("CoreReloadTime", clock),
        ("CoreCurrentCalls", str(calls)),
        ("CoreProcessedCalls", str(pbx.calls_processed)),
    )


_S, _C, _R = perm.SYSTEM, perm.CALL, perm.REPORTING

#: The built-in actions: lower-cased name -> entry.
BUILTIN: dict[str, ActionEntry] = {
    entry.name.lower(): entry
    for entry in (
        ActionEntry("AbsoluteTimeout", _absolute_timeout, _S | _C, "Set absolute timeout."),
        ActionEntry(
            "ChangeMonitor",
            _monitor_action("Changed monitor filename", needs_file=True),
            _C,
            "Change monitoring filename of a channel.",
        ),
        ActionEntry("Challenge", _challenge, 0, "Generate Challenge for MD5 Auth."),
        ActionEntry("Command", _command, perm.COMMAND, "Execute Asterisk CLI Command."),
        ActionEntry(
            "CoreSettings", _core_settings, _S | _R, "Show PBX core settings (version etc)."
        ),
        ActionEntry(
            "CoreShowChannels", _core_show_channels, _S | _R, "List currently active channels."
        ),
        ActionEntry("CoreStatus", _core_status, _S | _R, "Show PBX core status variables."),
        ActionEntry("DBDel", _db_del, _S, "Delete DB entry."),
        ActionEntry("DBDelTree", _db_del_tree, _S, "Delete DB Tree."),
        ActionEntry("DBGet", _db_get, _S | _R, "Get DB Entry."),
        ActionEntry(
            "DBGetTree",
            _db_get_tree,
            _S | _R,
            "Get DB entries, optionally at a particular family/key",
        ),
        ActionEntry("DBPut", _db_put, _S, "Put DB entry."),
        ActionEntry(
            "DeviceStateList", _device_state_list, _C | _R, "List the current known device states."
        ),
        ActionEntry("Events", _events, 0, "Control Event Flow."),
        ActionEntry("ExtensionState", _extension_state, _C | _R, "Check Extension Status."),
        ActionEntry(
            "ExtensionStateList",
            _extension_state_list,
            _C | _R,
            "List the current known extension states.",
        ),
        ActionEntry(
            "Filter", _filter, _S, "Dynamically add filters for the current manager session."
        ),
        ActionEntry("Getvar", _getvar, _C | _R, "Gets a channel variable or function value."),
        ActionEntry("Hangup", _hangup, _S | _C, "Hangup channel."),
        ActionEntry("IAXnetstats", _iax_netstats, _S | _R, "Show IAX Netstats."),
        ActionEntry("IAXpeerlist", _iax_peer_list, _S | _R, "List IAX Peers."),
        ActionEntry("IAXpeers", _iax_peers, _S | _R, "List IAX peers."),
        ActionEntry("IAXregistry", _iax_registry, _S | _R, "Show IAX registrations."),
        ActionEntry("ListCommands", _list_commands, 0, "List available manager commands."),
        ActionEntry("Login", _login, 0, "Login Manager."),
        ActionEntry("Logoff", _logoff, 0, "Logoff Manager."),
        ActionEntry("MailboxCount", _mailbox_count, _C | _R, "Check Mailbox Message Count."),
        ActionEntry("MailboxStatus", _mailbox_status, _C | _R, "Check mailbox."),
        ActionEntry(
            "Monitor", _monitor_action("Started monitoring channel"), _C, "Monitor a channel."
        ),
        ActionEntry("Originate", _originate, perm.ORIGINATE, "Originate a call."),
        ActionEntry("Ping", _ping, 0, "Keepalive command."),
        ActionEntry("QueueStatus", _queue_status, 0, "Show queue status."),
        ActionEntry("QueueSummary", _queue_summary, 0, "Show queue summary."),
        ActionEntry("Redirect", _redirect, _C, "Redirect (transfer) a call."),
        ActionEntry("Setvar", _setvar, _C, "Sets a channel variable or function value."),
        ActionEntry("Status", _status, _S | _C | _R, "List channel status."),
        ActionEntry(
            "StopMonitor",
            _monitor_action("Stopped monitoring channel"),
            _C,
            "Stop monitoring a channel.",
        ),
        ActionEntry("UserEvent", _user_event, perm.USER, "Send an arbitrary event."),
        ActionEntry(
            "VoicemailUsersList",
            _voicemail_users,
            _C | _R,
            "List All Voicemail User Information.",
        ),
    )
}
