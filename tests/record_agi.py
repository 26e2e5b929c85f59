"""
Record AGI dialogues from a real Asterisk into ``tests/data/agi-*`` (not a test module).

Run against the server of ``../shared/asterisk`` (see tests/data/agi-*.md)::

    eval "$(../shared/asterisk/env /tmp/ast-NAME)"
    .venv/bin/python -m tests.record_agi [SCENARIO ...]

It uses plain asyncio sockets and no txami code, so a capture shows what
Asterisk sends, not what txami expects.  Each scenario writes
``agi-NAME.raw`` (every byte Asterisk sent on the recorded connection),
``agi-NAME.sent.raw`` (every byte the script sent) and ``agi-NAME.log`` (the
timeline of both directions, as the AMI captures' ``.log`` files).  The
command lines sent are quoted as `txami.agi` quotes them, so a replay can
compare txami's output byte for byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Awaitable, Callable

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
CONTEXT = "txami-test"


def escape(chunk: bytes) -> str:
    """A chunk as the timeline shows it: printable ASCII, ``\\r`` ``\\n`` ``\\\\`` ``\\xNN``."""
    out = []
    for byte in chunk:
        if byte == 0x0A:
            out.append("\\n\n")
        elif byte == 0x0D:
            out.append("\\r")
        elif byte == 0x5C:
            out.append("\\\\")
        elif 0x20 <= byte < 0x7F:
            out.append(chr(byte))
        else:
            out.append(f"\\x{byte:02x}")
    text = "".join(out)
    return text if text.endswith("\n") else text + "\n"


class Recorder:
    """The two directions of one connection, with their timeline."""

    def __init__(self, name: str, what: str) -> None:
        self.name = name
        self.started = time.monotonic()
        self.received = bytearray()
        self.sent = bytearray()
        self.timeline = [
            f"## AGI transcript timeline for scenario '{name}' ({what})",
            "## format: '@@ +SECONDS CONN DIR NBYTES' then the chunk, \\r \\n \\\\ \\xNN escaped;"
            " '##' lines are notes",
        ]

    def _mark(self, direction: str, chunk: bytes) -> None:
        elapsed = time.monotonic() - self.started
        self.timeline.append(f"@@ +{elapsed:.3f} main {direction} {len(chunk)}")
        self.timeline.append(escape(chunk).rstrip("\n"))

    def got(self, chunk: bytes) -> None:
        self.received += chunk
        self._mark("S>C", chunk)

    def put(self, chunk: bytes) -> None:
        self.sent += chunk
        self._mark("C>S", chunk)

    def note(self, text: str) -> None:
        elapsed = time.monotonic() - self.started
        self.timeline.append(f"## +{elapsed:.3f} {text}")

    def save(self) -> None:
        base = os.path.join(DATA, f"agi-{self.name}")
        with open(base + ".raw", "wb") as f:
            f.write(bytes(self.received))
        with open(base + ".sent.raw", "wb") as f:
            f.write(bytes(self.sent))
        with open(base + ".log", "w", encoding="ascii") as f:
            f.write("\n".join(self.timeline) + "\n")
        print(f"wrote {base}.raw ({len(self.received)} bytes), .sent.raw, .log")


class AMI:
    """A bare AMI client: actions by ActionID, events into a list."""

    def __init__(self, recorder: Recorder | None = None) -> None:
        self.recorder = recorder
        self.events: list[dict[str, str]] = []
        self.waiting: dict[str, asyncio.Future[dict[str, str]]] = {}
        self.counter = 0
        self.changed = asyncio.Event()

    async def connect(self, username: str, secret: str, events: str) -> None:
        host, _, port = os.environ["TXAMI_TEST_AMI"].rpartition(":")
        self.reader, self.writer = await asyncio.open_connection(host, int(port))
        banner = await self.reader.readline()
        if self.recorder:
            self.recorder.got(banner)
        self.task = asyncio.ensure_future(self._read())
        await self.action("Login", Username=username, Secret=secret, Events=events)

    async def _read(self) -> None:
        buffer = b""
        while True:
            chunk = await self.reader.read(65536)
            if not chunk:
                return
            if self.recorder:
                self.recorder.got(chunk)
            buffer += chunk
            while b"\r\n\r\n" in buffer:
                block, buffer = buffer.split(b"\r\n\r\n", 1)
                message: dict[str, str] = {}
                for line in block.decode().split("\r\n"):
                    key, _, value = line.partition(": ")
                    message.setdefault(key, value)
                if "Event" in message:
                    self.events.append(message)
                    self.changed.set()
                elif message.get("ActionID") in self.waiting:
                    self.waiting.pop(message["ActionID"]).set_result(message)

    async def action(
        self, name: str, action_id: str | None = None, **headers: str
    ) -> dict[str, str]:
        self.counter += 1
        action_id = action_id or f"rec-{self.counter:02d}"
        lines = [f"Action: {name}", f"ActionID: {action_id}"]
        for key, value in headers.items():
            for one in value if isinstance(value, list) else [value]:
                lines.append(f"{key}: {one}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode()
        future: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
        self.waiting[action_id] = future
        if self.recorder:
            self.recorder.put(data)
        self.writer.write(data)
        return await asyncio.wait_for(future, 10)

    async def event(
        self, test: Callable[[dict[str, str]], bool], timeout: float = 10
    ) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for event in self.events[seen:]:
                if test(event):
                    return event
            seen = len(self.events)
            self.changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no such event")
            await asyncio.wait_for(self.changed.wait(), left)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.action("Logoff"), 5)
        self.writer.close()
        self.task.cancel()


# --- FastAGI ---------------------------------------------------------------------------------


class AGIConnection:
    """The script's side of one FastAGI connection, recorded."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rec: Recorder):
        self.reader = reader
        self.writer = writer
        self.rec = rec
        self.buffer = b""

    async def _line(self) -> bytes:
        while b"\n" not in self.buffer:
            chunk = await asyncio.wait_for(self.reader.read(65536), 15)
            if not chunk:
                raise EOFError("Asterisk closed the connection")
            self.rec.got(chunk)
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line

    async def environment(self) -> list[bytes]:
        lines = []
        while True:
            line = await self._line()
            if not line:
                return lines
            lines.append(line)

    async def reply(self) -> list[bytes]:
        """One reply: a line, or a ``520-`` block up to its ``520 `` line; HANGUP is separate."""
        first = await self._line()
        lines = [first]
        if first.startswith(b"520-"):
            while not lines[-1].startswith(b"520 "):
                lines.append(await self._line())
        return lines

    async def command(self, line: str) -> list[bytes]:
        data = line.encode() + b"\n"
        self.rec.put(data)
        self.writer.write(data)
        return await self.reply()

    def close(self) -> None:
        self.rec.note("the script closes the connection")
        self.writer.close()


async def fastagi(
    name: str,
    what: str,
    script: Callable[[AGIConnection, AMI, str], Awaitable[None]],
    variables: tuple[str, ...] = (),
) -> None:
    """Originate a call to extension 900 whose AGI connects here; run ``script`` on it."""
    rec = Recorder(name, what)
    connected: asyncio.Future[AGIConnection] = asyncio.get_running_loop().create_future()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not connected.done():
            connected.set_result(AGIConnection(reader, writer, rec))

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    ami = AMI()
    await ami.connect("admin", "adminsecret", "call")
    tag = f"agirec{os.getpid() % 10000:04d}"
    await ami.action(
        "Originate",
        Channel=f"Local/900@{CONTEXT}",
        Application="Wait",
        Data="30",
        CallerID=f'"txami agi" <{tag}>',
        Variable=[f"AGIHOST=127.0.0.1:{port}", *variables],
        Async="true",
    )
    agi = await asyncio.wait_for(connected, 15)
    rec.started = time.monotonic()
    rec.note("Asterisk connected (AGI(agi://127.0.0.1:PORT/txami,one,two) in extension 900)")
    env = await agi.environment()
    channel = next(line for line in env if line.startswith(b"agi_channel: "))[13:].decode()
    await script(agi, ami, channel)
    # Let Asterisk finish (a HANGUP it may still send is recorded) before saving.
    try:
        while True:
            chunk = await asyncio.wait_for(agi.reader.read(65536), 1)
            if not chunk:
                break
            rec.got(chunk)
    except (asyncio.TimeoutError, ConnectionError):
        pass
    rec.save()
    await ami.action("Hangup", Channel=f"/^Local\\/900@{CONTEXT}-.*/")
    server.close()
    await ami.close()


async def basic_script(agi: AGIConnection, ami: AMI, channel: str) -> None:
    for line in [
        "ANSWER",
        "CHANNEL STATUS",
        "GET VARIABLE TXAMI_GLOBAL",
        "GET VARIABLE TXAMI_UNSET",
        'SET VARIABLE TXAMI_AGI "hello world"',
        "GET VARIABLE TXAMI_AGI",
        'SET VARIABLE TXAMI_TRICKY "say \\"hi\\" (a) b\\\\c) endpos=1"',
        "GET VARIABLE TXAMI_TRICKY",
        "GET FULL VARIABLE ${TXAMI_AGI}/${EXTEN}",
        "GET VARIABLE CALLERID(num)",
        'STREAM FILE txami-no-such-file ""',
        "STREAM FILE txami-no-such-file 12# 800",
        "WAIT FOR DIGIT 100",
        "GET DATA txami-no-such-file 100 4",
        'SAY DIGITS 123 ""',
        'SAY NUMBER 42 ""',
        'DATABASE PUT txami-agi key "some value"',
        "DATABASE GET txami-agi key",
        "DATABASE DEL txami-agi key",
        "DATABASE GET txami-agi key",
        "DATABASE DEL txami-agi key",
        "EXEC NoOp txami,exec",
        "EXEC TxamiNoSuchApp",
        "SET CONTEXT txami-test",
        "SET EXTENSION 900",
        "SET PRIORITY 3",
        'VERBOSE "txami agi says hi" 1',
        "NOOP",
        "TXAMI NO SUCH COMMAND",
        "SET VARIABLE ONLYNAME",
        "WAIT FOR DIGIT",
    ]:
        await agi.command(line)
    agi.close()


async def hangup_script(agi: AGIConnection, ami: AMI, channel: str) -> None:
    """A command runs when the channel is hung up from AMI; then a dead channel."""
    await agi.command("ANSWER")
    data = b"EXEC Wait 10\n"
    agi.rec.put(data)
    agi.writer.write(data)
    await asyncio.sleep(0.5)
    agi.rec.note(f"AMI Hangup of {channel}")
    await ami.action("Hangup", Channel=channel)
    await agi.reply()  # the EXEC's result
    if agi.rec.name != "nosighup":  # AGISIGHUP=no: Asterisk sends no HANGUP line
        await agi.reply()  # HANGUP
    await agi.command("ANSWER")
    await agi.command("GET VARIABLE TXAMI_GLOBAL")
    await agi.command("NOOP")
    agi.close()


async def hangup_command_script(agi: AGIConnection, ami: AMI, channel: str) -> None:
    """The script hangs the channel up itself."""
    await agi.command("ANSWER")
    await agi.command("HANGUP")
    await agi.reply()  # HANGUP
    await agi.command('STREAM FILE txami-no-such-file ""')
    agi.close()


# --- AsyncAGI --------------------------------------------------------------------------------


async def asyncagi(name: str, hang_up: bool) -> None:
    """A call to extension 901 driven by AGI actions on an ``Events: agi`` session."""
    rec = Recorder(name, "an AMI session logged in with Events: agi; a second session originates")
    main = AMI(rec)
    await main.connect("admin", "adminsecret", "agi")
    driver = AMI()
    await driver.connect("admin", "adminsecret", "off")
    tag = f"agirec{os.getpid() % 10000:04d}"
    rec.note(f"the driver originates Local/901@{CONTEXT} (caller ID {tag})")
    await driver.action(
        "Originate",
        Channel=f"Local/901@{CONTEXT}",
        Application="Wait",
        Data="30",
        CallerID=f'"txami async" <{tag}>',
        Async="true",
    )
    start = await main.event(lambda e: e.get("Event") == "AsyncAGIStart")
    channel = start["Channel"]
    serial = 0

    async def command(line: str) -> dict[str, str]:
        nonlocal serial
        serial += 1
        ident = f"agirec.{serial}"
        await main.action("AGI", action_id=ident, Channel=channel, Command=line, CommandID=ident)
        return await main.event(
            lambda e: e.get("Event") == "AsyncAGIExec" and e.get("CommandId") == ident
        )

    if not hang_up:
        for line in [
            "ANSWER",
            "GET VARIABLE TXAMI_GLOBAL",
            'SET VARIABLE TXAMI_ASYNC "hello world"',
            "GET VARIABLE TXAMI_ASYNC",
            "TXAMI NO SUCH COMMAND",
            "SET VARIABLE ONLYNAME",
            "ASYNCAGI BREAK",
        ]:
            await command(line)
    else:
        await command("ANSWER")
        serial += 1
        ident = f"agirec.{serial}"
        await main.action(
            "AGI", action_id=ident, Channel=channel, Command="EXEC Wait 10", CommandID=ident
        )
        await asyncio.sleep(0.5)
        rec.note(f"the driver hangs up {channel}")
        await driver.action("Hangup", Channel=channel)
        await main.event(lambda e: e.get("Event") == "AsyncAGIEnd")
        await asyncio.sleep(0.3)
        serial += 1
        ident = f"agirec.{serial}"
        rec.note("an AGI action for the channel that is gone")
        await main.action("AGI", action_id=ident, Channel=channel, Command="NOOP", CommandID=ident)
    await main.event(lambda e: e.get("Event") == "AsyncAGIEnd")
    await asyncio.sleep(0.3)
    await main.close()
    rec.save()
    await driver.action("Hangup", Channel=f"/^Local\\/901@{CONTEXT}-.*/")
    await driver.close()


SCENARIOS: dict[str, Callable[[], Awaitable[None]]] = {
    "fastagi": lambda: fastagi("fastagi", "FastAGI: the commands of txami.agi", basic_script),
    "hangup": lambda: fastagi("hangup", "FastAGI: hung up from AMI mid-command", hangup_script),
    "nosighup": lambda: fastagi(
        "nosighup",
        "FastAGI with AGISIGHUP=no: hung up from AMI mid-command, no HANGUP line",
        hangup_script,
        ("AGISIGHUP=no",),
    ),
    "hangup-command": lambda: fastagi(
        "hangup-command", "FastAGI: the script hangs up", hangup_command_script
    ),
    "async": lambda: asyncagi("async", hang_up=False),
    "async-hangup": lambda: asyncagi("async-hangup", hang_up=True),
}


async def main(names: list[str]) -> None:
    for name in names or list(SCENARIOS):
        await SCENARIOS[name]()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
