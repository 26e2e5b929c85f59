"""
Actions about the session itself and the core: Login, Challenge, Logoff, Ping, Events,
Filter, ListCommands, UserEvent, Command, CoreSettings, CoreStatus.
"""

from __future__ import annotations

import hashlib
import re
import time

from txami.testing import permissions as perm
from txami.testing.actions.common import ack, error, id_pairs
from txami.testing.cli import run_command
from txami.testing.handler import Action, ActionEntry, Pairs, Session

__all__ = ["ENTRIES"]

_BLACKLISTED_COMMANDS = (("module", "load"), ("module", "unload"), ("restart", "gracefully"))
_S, _R = perm.SYSTEM, perm.REPORTING


def _login(session: Session, action: Action) -> None:
    if session.logged_in:
        ack(session, action, "Already authenticated")
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
    ack(session, action, "Authentication accepted")
    if session.read_mask & perm.SYSTEM and session.event_mask & perm.SYSTEM and not fake.booting:
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
        error(session, action, "Must specify AuthType")
        return
    if not session.challenge:
        session.challenge = session.factory.new_challenge()
    ack(session, action, None, ("Challenge", session.challenge))


def _logoff(session: Session, action: Action) -> None:
    session.write_response(
        [("Response", "Goodbye"), *id_pairs(action), ("Message", "Thanks for all the fish.")]
    )
    session.close_after_answer()


def _ping(session: Session, action: Action) -> None:
    now = session.factory.pbx.now()
    ack(session, action, None, ("Ping", "Pong"), ("Timestamp", f"{now:.6f}"))


def _events(session: Session, action: Action) -> None:
    mask = perm.event_mask(action.get("EventMask"))
    if mask is None:
        error(session, action, "Invalid event mask")
        return
    session.event_mask = mask
    session.write_response(
        [("Response", "Success"), *id_pairs(action), ("Events", "On" if mask else "Off")]
    )


def _filter(session: Session, action: Action) -> None:
    if action.get("Operation").lower() != "add":
        error(session, action, "Unknown operation")
        return
    pattern = action.get("Filter")
    if not pattern:
        error(
            session,
            action,
            "Filter was formatted incorrectly.  Check the syntax of the filter given.",
        )
        return
    black = pattern.startswith("!")
    try:
        compiled = re.compile(pattern[1:] if black else pattern)
    except re.error:
        error(session, action, "Filter did not compile.  Check the syntax of the filter given.")
        return
    (session.black_filters if black else session.white_filters).append(compiled)
    ack(session, action, "Success")


def _list_commands(session: Session, action: Action) -> None:
    pairs: Pairs = [("Response", "Success"), *id_pairs(action)]
    entries = sorted(session.factory.actions(), key=lambda entry: entry.name.lower())
    for entry in entries:
        if entry.authority and not session.write_mask & entry.authority:
            continue
        privilege = perm.class_string(entry.authority)
        pairs.append((entry.name, f"{entry.synopsis}  (Priv: {privilege})"))
    session.write_response(pairs)


def _user_event(session: Session, action: Action) -> None:
    name = action.get("UserEvent")
    ack(session, action, "Event Sent")
    body = [
        line
        for line in action.lines
        if line[:10].lower() != "userevent:" and line[:7].lower() != "action:"
    ]
    privilege = perm.class_string(perm.USER)
    text = f"Event: UserEvent\r\nPrivilege: {privilege}\r\nUserEvent: {name}\r\n"
    session.factory.broadcast(perm.USER, text + "".join(f"{line}\r\n" for line in body) + "\r\n")


def _command(session: Session, action: Action) -> None:
    command = action.get("Command")
    if not command:
        error(session, action, "No command provided")
        return
    words = tuple(word.lower() for word in command.split())
    if any(words[: len(bad)] == bad for bad in _BLACKLISTED_COMMANDS):
        error(session, action, "Command blacklisted")
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
            *id_pairs(action),
            ("Message", "Command output follows"),
            *(("Output", line) for line in lines),
        ]
    )


def _core_settings(session: Session, action: Action) -> None:
    fake = session.factory
    ack(
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
    ack(
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


#: The actions of this module.
ENTRIES = [
    ActionEntry("Challenge", _challenge, 0, "Generate Challenge for MD5 Auth."),
    ActionEntry("Command", _command, perm.COMMAND, "Execute Asterisk CLI Command."),
    ActionEntry("CoreSettings", _core_settings, _S | _R, "Show PBX core settings (version etc)."),
    ActionEntry("CoreStatus", _core_status, _S | _R, "Show PBX core status variables."),
    ActionEntry("Events", _events, 0, "Control Event Flow."),
    ActionEntry("Filter", _filter, _S, "Dynamically add filters for the current manager session."),
    ActionEntry("ListCommands", _list_commands, 0, "List available manager commands."),
    ActionEntry("Login", _login, 0, "Login Manager."),
    ActionEntry("Logoff", _logoff, 0, "Logoff Manager."),
    ActionEntry("Ping", _ping, 0, "Keepalive command."),
    ActionEntry("UserEvent", _user_event, perm.USER, "Send an arbitrary event."),
]
