"""
The few Asterisk CLI commands the fake answers through the ``Command`` action.

``core show version``, ``core show uptime [seconds]``, ``core show channels``,
``core show applications``, ``dialplan show [context]``, ``database show
[family]`` and ``manager show command <action>`` are built from the `PBX`
state; a test adds or replaces any command through ``PBX.cli``.  An unknown
command fails with Asterisk's ``No such command`` text.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from txami.testing.pbx import PBX

__all__ = ["run_command"]

#: Looks up an action for ``manager show command``: name -> (synopsis, privilege) or `None`.
ActionInfo = Callable[[str], "tuple[str, str] | None"]

_APPLICATIONS = {
    "Answer": "Answer a channel if ringing.",
    "Busy": "Indicate the Busy condition.",
    "ConfBridge": "Conference bridge application.",
    "Congestion": "Indicate the Congestion condition.",
    "Dial": "Attempt to connect to another device or endpoint and bridge the call.",
    "Echo": "Echo media, DTMF back to the calling party",
    "Hangup": "Hang up the calling channel.",
    "Log": "Send arbitrary text to a selected log level.",
    "NoOp": "Do Nothing (No Operation).",
    "Playback": "Play a file.",
    "Queue": "Queue a call for a call queue.",
    "Set": "Set channel variable or function value.",
    "UserEvent": "Send an arbitrary user-defined event to parties interested in a channel "
    "(AMI users and relevant res_stasis applications).",
    "Verbose": "Send arbitrary text to verbose output.",
    "VoiceMailMain": "Check Voicemail messages.",
    "Wait": "Waits for some time.",
}


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _duration(seconds: int) -> str:
    parts = []
    for size, word in ((31536000, "year"), (604800, "week"), (86400, "day"), (3600, "hour")):
        if seconds >= size:
            parts.append(_plural(seconds // size, word))
            seconds %= size
    if seconds >= 60:
        parts.append(_plural(seconds // 60, "minute"))
        seconds %= 60
    if seconds or not parts:
        parts.append(_plural(seconds, "second"))
    return ", ".join(parts)


def _version(pbx: PBX) -> list[str]:
    built = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(pbx.start_time))
    return [
        f"Asterisk {pbx.asterisk_version} built by txami @ fakepbx on a x86_64 "
        f"running Linux on {built}"
    ]


def _uptime(pbx: PBX, args: list[str]) -> list[str]:
    seconds = int(pbx.uptime)
    if args[3:4] == ["seconds"]:
        return [f"System uptime: {seconds}", f"Last reload: {seconds}"]
    return [f"System uptime: {_duration(seconds)}", f"Last reload: {_duration(seconds)}"]


def _channels(pbx: PBX) -> list[str]:
    row = "{:<64.64} {:<32.32} {:<7.7} {:<30.30}"
    lines = [row.format("Channel", "Location", "State", "Application(Data)")]
    for channel in pbx.channels.values():
        lines.append(
            row.format(
                channel.name,
                f"{channel.exten}@{channel.context}:{channel.priority}",
                channel.state_description,
                f"{channel.application}({channel.data})",
            )
        )
    count = len(pbx.channels)
    calls = len({channel.linkedid for channel in pbx.channels.values()})
    lines.append(f"{_plural(count, 'active channel')}")
    lines.append(
        f"{calls} of 500 max active call{'' if calls == 1 else 's'} "
        f"({calls / 5.0:5.2f}% of capacity)"
    )
    lines.append(f"{_plural(pbx.calls_processed, 'call')} processed")
    return lines


def _dialplan(pbx: PBX, args: list[str]) -> tuple[bool, list[str]]:
    wanted = args[2] if len(args) > 2 else None
    if wanted is not None and wanted not in pbx.dialplan:
        return False, [f"There is no existence of '{wanted}' context"]
    lines: list[str] = []
    extensions = priorities = contexts = 0
    for context in sorted(pbx.dialplan):
        if wanted is not None and context != wanted:
            continue
        contexts += 1
        lines.append(f"[ Context '{context}' created by 'pbx_config' ]")
        for exten in sorted(pbx.dialplan[context]):
            extensions += 1
            entries = []
            hint = pbx.hints.get((context, exten))
            if hint is not None:
                entries.append(f"hint: {hint}")
            steps = pbx.dialplan[context][exten]
            entries.extend(f"{n}. {app}({data})" for n, (app, data) in enumerate(steps, 1))
            priorities += len(entries)
            for index, entry in enumerate(entries):
                name = f"'{exten}' =>" if index == 0 else ""
                lines.append(f"  {name:<17} {entry:<45} [txami.testing]")
        lines.append("")
    lines.append(
        f"-= {_plural(extensions, 'extension')} ({priorities} "
        f"priorit{'y' if priorities == 1 else 'ies'}) in {_plural(contexts, 'context')}. =-"
    )
    return True, lines


def _applications() -> list[str]:
    lines = ["    -= Registered Asterisk Applications =-"]
    lines.extend(f"{name:>20}: {text}" for name, text in sorted(_APPLICATIONS.items()))
    lines.append(f"    -= {len(_APPLICATIONS)} Applications Registered =-")
    return lines


def _database(pbx: PBX, args: list[str]) -> list[str]:
    prefix = "/" + "/".join(args[2:]) if len(args) > 2 else ""
    rows = [(k, v) for k, v in sorted(pbx.db.items()) if k.startswith(prefix)]
    lines = [f"{key:<50}: {value:<25}" for key, value in rows]
    lines.append(f"{_plural(len(rows), 'result')} found.")
    return lines


def run_command(pbx: PBX, command: str, actions: ActionInfo) -> tuple[bool, list[str]]:
    """Run CLI ``command``; ``(succeeded, output lines)``."""
    args = command.split()
    text = " ".join(args)
    scripted = pbx.cli.get(text)
    if scripted is not None:
        if callable(scripted):
            return scripted(args)
        return True, list(scripted)
    low = [arg.lower() for arg in args]
    if low[:3] == ["core", "show", "version"]:
        return True, _version(pbx)
    if low[:3] == ["core", "show", "uptime"]:
        return True, _uptime(pbx, low)
    if low[:3] == ["core", "show", "channels"]:
        return True, _channels(pbx)
    if low[:3] == ["core", "show", "applications"]:
        return True, _applications()
    if low[:2] == ["dialplan", "show"]:
        return _dialplan(pbx, args)
    if low[:2] == ["database", "show"]:
        return True, _database(pbx, args)
    if low[:3] == ["manager", "show", "command"] and len(args) == 4:
        info = actions(args[3])
        if info is None:
            return True, []
        synopsis, privilege = info
        return True, [
            "",
            f"  -= Info about Manager Command '{args[3]}' =- ",
            "",
            "[Synopsis]",
            f"{synopsis} ",
            "",
            "[Privilege]",
            f"{privilege} ",
        ]
    best = " ".join(args[:-1]) if len(args) > 1 else text
    return False, [
        f"No such command '{text}' (type 'core show help {best}' for other possible commands)"
    ]
