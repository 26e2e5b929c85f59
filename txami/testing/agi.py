"""
A fake Asterisk channel in AGI, to test AGI handlers without a PBX.

`FakeAGI` plays Asterisk's side of one AGI session from a small model of the
channel: its variables, state, dialplan position, Asterisk's database, the
DTMF digits the caller will press, and what was played, executed and logged.
It answers every command of `txami.agi.AGICommands` with the exact reply
format of Asterisk 20 (``200 result=...``, ``510``, the ``520-`` usage block,
``511`` on a dead channel, ``HANGUP``), parses command lines with Asterisk's
own quoting rules (`parse_args`), and records each line it received.

Over FastAGI, `FakeAGI.run` connects it in memory to a `FastAGIFactory` (or
`FakeAGI.connect` over TCP to a real FastAGI server)::

    fake = FakeAGI(arguments=["one"], digits="42#")
    done = fake.run(FastAGIFactory(handler, reactor=clock))
    assert fake.commands == ["ANSWER", "GET DATA enter-number 3000 4"]

Over AsyncAGI, `FakeAsyncAGI` adds the ``AGI`` action to a `FakeAsterisk` and
raises ``AsyncAGIStart``/``AsyncAGIExec``/``AsyncAGIEnd`` for fake channels.
`FakeAGI.add_command` scripts any reply the model does not give.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote as url_quote

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTCP, IReactorTime
from twisted.internet.protocol import ClientFactory, Protocol, ServerFactory, connectionDone
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure
from twisted.test import iosim

from txami.message import Message
from txami.testing.actions import response
from txami.testing.helpers import ChunkPump
from txami.testing.server import FakeAsterisk, FakeSession

__all__ = ["DEAD_COMMANDS", "FakeAGI", "FakeAsyncAGI", "Responder", "parse_args"]

#: Scripted reply for a command: ``responder(fake, argv)`` returns the reply
#: line (or lines, for a ``520-`` block) without line ends.
Responder = Callable[["FakeAGI", list[str]], "str | list[str]"]

#: The commands Asterisk still runs on a dead channel (the rest answer ``511``).
DEAD_COMMANDS = frozenset(
    {
        "asyncagi break",
        "database del",
        "database deltree",
        "database get",
        "database put",
        "exec",
        "get full variable",
        "get variable",
        "noop",
        "set variable",
        "speech destroy",
        "speech unload grammar",
        "verbose",
    }
)

_MAX_ARGS = 128
_DEAD = "511 Command Not Permitted on a dead channel or intercept routine"
_UNKNOWN = "510 Invalid or unknown command"
_PLAYBACK_SAMPLES = 8000  # every fake sound file lasts a second at 8 kHz
_iosim: Any = iosim
_ports = itertools.count(41000)
_uniqueids = itertools.count(1)


def parse_args(line: str) -> list[str]:
    """
    Split an AGI command line into words as Asterisk 20's ``parse_args`` does:
    spaces and tabs separate words, ``"`` toggles quoting (and starts a word,
    possibly empty), a backslash makes the next character literal, and words
    beyond the 127th are dropped.
    """
    words: list[str] = []
    current: list[str] | None = None  # None between words
    quoted = escaped = False
    for char in line:
        if char == '"' and not escaped:
            quoted = not quoted
            if quoted and current is None and len(words) < _MAX_ARGS - 1:
                current = []
            continue
        if char in " \t" and not quoted and not escaped:
            if current is not None:
                words.append("".join(current))
                current = None
            continue
        if char == "\\" and not escaped:
            escaped = True
            continue
        escaped = False
        if current is None:
            if len(words) >= _MAX_ARGS - 1:
                continue  # "Too many arguments, truncating"
            current = []
        current.append(char)
    if current is not None:
        words.append("".join(current))
    return words


def _usage(command: str) -> list[str]:
    return [
        "520-Invalid command syntax.  Proper usage follows:",
        f"Usage: {command.upper()} (see Asterisk's 'agi show commands')",
        "520 End of proper usage.",
    ]


def _integer(text: str) -> int | None:
    """``sscanf("%d")`` of Asterisk: a leading integer, else `None`."""
    digits = text.strip()
    sign = digits[:1] if digits[:1] in "+-" else ""
    body = digits[len(sign) :]
    count = 0
    while count < len(body) and body[count].isdecimal() and body[count].isascii():
        count += 1
    return int(sign + body[:count]) if count else None


class FakeAGI:
    """
    Asterisk's side of one AGI session on a modelled channel.

    The keywords set the channel: its name, caller ID, dialplan position,
    ``arguments`` (``agi_arg_N``), ``script`` (``agi_network_script``),
    channel ``variables``, Asterisk's ``database`` (``{(family, key): value}``),
    the ``digits`` the caller will press (one per WAIT FOR DIGIT, GET DATA
    reads up to ``#``), ``missing_files`` that playback cannot find,
    ``applications`` (name -> the return value EXEC reports; others return 0),
    ``answered`` (the state is 6, up, instead of 4, ringing) and ``sighup``
    (False: no ``HANGUP`` line, as with ``AGISIGHUP=no``).  ``env`` adds or
    replaces ``agi_*`` variables.

    What the session did is kept in ``commands`` (every line received),
    ``played``, ``executed`` (``(application, data)``), ``logged``
    (VERBOSE messages) and the model's state attributes.
    """

    def __init__(
        self,
        *,
        channel: str = "PJSIP/100-00000001",
        caller_id: str = "100",
        caller_id_name: str = "Alice",
        context: str = "default",
        extension: str = "s",
        priority: int = 1,
        arguments: Sequence[str] = (),
        script: str = "",
        variables: Mapping[str, str] | None = None,
        database: Mapping[tuple[str, str], str] | None = None,
        digits: str = "",
        missing_files: Iterable[str] = (),
        applications: Mapping[str, int] | None = None,
        answered: bool = False,
        sighup: bool = True,
        language: str = "en",
        uniqueid: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.channel = channel
        self.caller_id = caller_id
        self.caller_id_name = caller_id_name
        self.context = context
        self.extension = extension
        self.priority = priority
        self.arguments = list(arguments)
        self.script = script
        self.language = language
        self.uniqueid = uniqueid or f"1700000000.{next(_uniqueids)}"
        self.variables: dict[str, str] = dict(variables or {})
        self.database: dict[tuple[str, str], str] = dict(database or {})
        #: The DTMF digits the caller has yet to press.
        self.digits = digits
        self.missing_files = set(missing_files)
        self.applications: dict[str, int] = {k.lower(): v for k, v in (applications or {}).items()}
        #: The channel state: 4 ringing, 6 up.
        self.state = 6 if answered else 4
        self.sighup = sighup
        self.extra_env = dict(env or {})
        #: Every command line received, in order.
        self.commands: list[str] = []
        #: The files played and the things said (``"digits:123"``, ``"number:42"``...).
        self.played: list[str] = []
        #: ``(application, data)`` of every EXEC.
        self.executed: list[tuple[str, str]] = []
        #: The messages of VERBOSE.
        self.logged: list[str] = []
        #: Whether the channel has hung up (then most commands answer ``511``).
        self.hung_up = False
        #: The seconds of SET AUTOHANGUP (`None` if never set).
        self.autohangup: float | None = None
        #: Whether SET MUSIC turned music on hold on.
        self.music = False
        self._scripted: dict[tuple[str, ...], Responder] = {}
        self._send: Callable[[str], None] | None = None
        self._pump: Any = None
        self._async = False

    # --- the environment ---------------------------------------------------------------------

    def environment(self, request: str = "agi://127.0.0.1/") -> list[tuple[str, str]]:
        """The ``agi_*`` variables in the order Asterisk sends them (``request``: the URL)."""
        pairs: list[tuple[str, str]] = []
        if not self._async:
            pairs.append(("agi_network", "yes"))
            if self.script:
                pairs.append(("agi_network_script", self.script))
        pairs += [
            ("agi_request", "async" if self._async else request + self.script),
            ("agi_channel", self.channel),
            ("agi_language", self.language),
            ("agi_type", self.channel.partition("/")[0]),
            ("agi_uniqueid", self.uniqueid),
            ("agi_version", "20.20.1"),
            ("agi_callerid", self.caller_id or "unknown"),
            ("agi_calleridname", self.caller_id_name or "unknown"),
            ("agi_callingpres", "0"),
            ("agi_callingani2", "0"),
            ("agi_callington", "0"),
            ("agi_callingtns", "0"),
            ("agi_dnid", "unknown"),
            ("agi_rdnis", "unknown"),
            ("agi_context", self.context),
            ("agi_extension", self.extension),
            ("agi_priority", str(self.priority)),
            ("agi_enhanced", "0.0"),
            ("agi_accountcode", ""),
            ("agi_threadid", "140000000000000"),
        ]
        pairs += [(f"agi_arg_{i}", arg) for i, arg in enumerate(self.arguments, 1)]
        replaced = {name: value for name, value in self.extra_env.items()}
        pairs = [(name, replaced.pop(name, value)) for name, value in pairs]
        pairs += list(replaced.items())
        return pairs

    def environment_text(self, request: str = "agi://127.0.0.1/") -> str:
        """The environment as Asterisk writes it: ``name: value`` lines and a blank line."""
        return "".join(f"{name}: {value}\n" for name, value in self.environment(request)) + "\n"

    # --- scripting -----------------------------------------------------------------------------

    def add_command(self, command: str, responder: Responder) -> None:
        """
        Answer ``command`` (its words, any case: ``"SAY ALPHA"``) with
        ``responder(fake, argv)`` instead of the model; also for commands the
        model does not know.
        """
        self._scripted[tuple(command.lower().split())] = responder

    def press(self, digits: str) -> None:
        """The caller presses ``digits`` (read by the next digit-reading commands)."""
        self.digits += digits

    def hang_up(self) -> None:
        """
        The caller hangs up: Asterisk sends ``HANGUP`` (unless ``sighup`` is
        False) and answers ``511`` to every later command that needs a live channel.
        """
        if self.hung_up:
            return
        self.hung_up = True
        if self.sighup and self._send is not None and not self._async:
            self._send("HANGUP")

    # --- answering -----------------------------------------------------------------------------

    def reply(self, line: str) -> list[str]:
        """The reply lines to one command line, as Asterisk 20 gives them (also recorded)."""
        self.commands.append(line)
        argv = parse_args(line)
        if not argv:
            return [_UNKNOWN]
        low = [word.lower() for word in argv]
        for size in (3, 2, 1):
            key = tuple(low[:size])
            responder = self._scripted.get(key)
            if responder is not None:
                answer = responder(self, argv)
                return [answer] if isinstance(answer, str) else list(answer)
        for size in (3, 2, 1):
            name = " ".join(low[:size])
            method = _MODEL.get(name)
            if method is None or len(low) < size:
                continue
            if self.hung_up and name not in DEAD_COMMANDS:
                return [_DEAD]
            modelled = method(self, argv)
            if modelled is None:
                return _usage(name)
            return [modelled] if isinstance(modelled, str) else modelled
        return [_UNKNOWN]

    def _digit_or(self, escape: str) -> str | None:
        if self.digits and self.digits[0] in escape:
            digit, self.digits = self.digits[0], self.digits[1:]
            return digit
        return None

    def _play(self, what: str, escape: str, offset: int = 0) -> str:
        self.played.append(what)
        if what in self.missing_files:
            return f"200 result=-1 endpos={offset}"
        digit = self._digit_or(escape)
        if digit is not None:
            return f"200 result={ord(digit)} endpos={offset + _PLAYBACK_SAMPLES // 5}"
        return f"200 result=0 endpos={_PLAYBACK_SAMPLES}"

    def _say(self, what: str, escape: str) -> str:
        self.played.append(what)
        digit = self._digit_or(escape)
        return f"200 result={ord(digit) if digit else 0}"

    def _lookup(self, name: str) -> str | None:
        builtin = {
            "CHANNEL": self.channel,
            "UNIQUEID": self.uniqueid,
            "CONTEXT": self.context,
            "EXTEN": self.extension,
            "PRIORITY": str(self.priority),
            "CALLERID(num)": self.caller_id,
            "CALLERID(name)": self.caller_id_name,
            "CALLERID(all)": f'"{self.caller_id_name}" <{self.caller_id}>',
        }
        if name in self.variables:
            return self.variables[name]
        return builtin.get(name)

    def _substitute(self, text: str) -> str:
        out = []
        pos = 0
        while True:
            start = text.find("${", pos)
            end = text.find("}", start + 2) if start >= 0 else -1
            if start < 0 or end < 0:
                out.append(text[pos:])
                return "".join(out)
            out.append(text[pos:start])
            out.append(self._lookup(text[start + 2 : end]) or "")
            pos = end + 1

    # One method per command: argv in, the reply (or None for "wrong arguments") out.

    def _answer(self, argv: list[str]) -> str:
        self.state = 6
        return "200 result=0"

    def _hangup(self, argv: list[str]) -> list[str] | str | None:
        if len(argv) == 2 and argv[1] != self.channel:
            return "200 result=-1"
        if len(argv) > 2:
            return None
        lines = ["200 result=1"]
        if not self.hung_up:
            self.hung_up = True
            if self.sighup and not self._async:
                lines.append("HANGUP")
        return lines

    def _channel_status(self, argv: list[str]) -> str | None:
        if len(argv) == 2 or (len(argv) == 3 and argv[2] == self.channel):
            return f"200 result={self.state}"
        return "200 result=-1" if len(argv) == 3 else None

    def _exec(self, argv: list[str]) -> str | None:
        if len(argv) < 2:
            return None
        data = argv[2] if len(argv) > 2 else ""
        self.executed.append((argv[1], data))
        return f"200 result={self.applications.get(argv[1].lower(), 0)}"

    def _set_autohangup(self, argv: list[str]) -> str | None:
        if len(argv) != 3:
            return None
        try:
            self.autohangup = max(0.0, float(argv[2]))
        except ValueError:
            return None
        return "200 result=0"

    def _set_callerid(self, argv: list[str]) -> str:
        if len(argv) > 2:
            text = argv[2]
            name, _, rest = text.partition("<")
            if rest:
                self.caller_id_name = name.strip().strip('"')
                self.caller_id = rest.partition(">")[0]
            else:
                self.caller_id = text
        return "200 result=1"

    def _set_music(self, argv: list[str]) -> str | None:
        if len(argv) < 3:
            return None
        if argv[2].lower().startswith("on"):
            self.music = True
        elif argv[2].lower().startswith("off"):
            self.music = False
        return "200 result=0"

    def _set_context(self, argv: list[str]) -> str | None:
        if len(argv) != 3:
            return None
        self.context = argv[2]
        return "200 result=0"

    def _set_extension(self, argv: list[str]) -> str | None:
        if len(argv) != 3:
            return None
        self.extension = argv[2]
        return "200 result=0"

    def _set_priority(self, argv: list[str]) -> str | None:
        if len(argv) != 3:
            return None
        number = _integer(argv[2])
        if number is None or number < 1:
            return None
        self.priority = number
        return "200 result=0"

    def _stream_file(self, argv: list[str]) -> str | None:
        if len(argv) not in (4, 5):
            return None
        offset = _integer(argv[4]) if len(argv) == 5 else 0
        if offset is None:
            return None
        return self._play(argv[2], argv[3], offset)

    def _get_option(self, argv: list[str]) -> str | None:
        if len(argv) not in (4, 5):
            return None
        played = self._play(argv[2], argv[3])
        if played.startswith("200 result=0 "):
            digit = self._digit_or(argv[3])
            if digit is not None:
                return f"200 result={ord(digit)} endpos={_PLAYBACK_SAMPLES}"
        return played

    def _get_data(self, argv: list[str]) -> str | None:
        if len(argv) < 3:
            return None
        self.played.append(argv[2])
        if argv[2] in self.missing_files:
            return "200 result=-1"
        limit = _integer(argv[4]) if len(argv) > 4 else None
        limit = limit if limit and limit > 0 else 1024
        read = ""
        while self.digits and len(read) < limit:
            digit, self.digits = self.digits[0], self.digits[1:]
            if digit == "#":
                return f"200 result={read}"
            read += digit
        if len(read) >= limit:
            return f"200 result={read}"
        return f"200 result={read} (timeout)"

    def _wait_for_digit(self, argv: list[str]) -> str | None:
        if len(argv) != 4 or _integer(argv[3]) is None:
            return None
        if self.digits:
            digit, self.digits = self.digits[0], self.digits[1:]
            return f"200 result={ord(digit)}"
        return "200 result=0"

    def _say_digits(self, argv: list[str]) -> str | None:
        if len(argv) != 4 or _integer(argv[2]) is None:
            return None
        return self._say(f"digits:{argv[2]}", argv[3])

    def _say_number(self, argv: list[str]) -> str | None:
        if len(argv) not in (4, 5) or _integer(argv[2]) is None:
            return None
        return self._say(f"number:{_integer(argv[2])}", argv[3])

    def _say_alpha(self, argv: list[str]) -> str | None:
        if len(argv) not in (4, 5):
            return None
        return self._say(f"alpha:{argv[2]}", argv[3])

    def _set_variable(self, argv: list[str]) -> str | None:
        if len(argv) != 4:
            return None
        self.variables[argv[2]] = argv[3]
        return "200 result=1"

    def _get_variable(self, argv: list[str]) -> str | None:
        if len(argv) != 3:
            return None
        value = self._lookup(argv[2])
        return "200 result=0" if value is None else f"200 result=1 ({value})"

    def _get_full_variable(self, argv: list[str]) -> str | None:
        if len(argv) not in (4, 5):
            return None
        if len(argv) == 5 and argv[4] != self.channel:
            return "200 result=0"
        return f"200 result=1 ({self._substitute(argv[3])})"

    def _database_get(self, argv: list[str]) -> str | None:
        if len(argv) != 4:
            return None
        value = self.database.get((argv[2], argv[3]))
        return "200 result=0" if value is None else f"200 result=1 ({value})"

    def _database_put(self, argv: list[str]) -> str | None:
        if len(argv) != 5:
            return None
        self.database[(argv[2], argv[3])] = argv[4]
        return "200 result=1"

    def _database_del(self, argv: list[str]) -> str | None:
        if len(argv) != 4:
            return None
        self.database.pop((argv[2], argv[3]), None)
        return "200 result=1"  # as Asterisk 20 answers, even for a missing key

    def _database_deltree(self, argv: list[str]) -> str | None:
        if len(argv) not in (3, 4):
            return None
        prefix = argv[3] if len(argv) == 4 else None
        doomed = [
            k
            for k in self.database
            if k[0] == argv[2]
            and (prefix is None or k[1] == prefix or k[1].startswith(prefix + "/"))
        ]
        for key in doomed:
            del self.database[key]
        return "200 result=0" if doomed else "200 result=1"

    def _verbose(self, argv: list[str]) -> str | None:
        if len(argv) < 2:
            return None
        self.logged.append(argv[1])
        return "200 result=1"

    def _noop(self, argv: list[str]) -> str:
        return "200 result=0"

    def _asyncagi_break(self, argv: list[str]) -> str:
        return "200 result=0"

    # --- connecting ----------------------------------------------------------------------------

    def run(self, factory: ServerFactory, clock: IReactorTime | None = None) -> Deferred[FakeAGI]:
        """
        Connect in memory to the FastAGI server ``factory`` (e.g. a
        `FastAGIFactory`) and exchange everything that can be exchanged now.
        Fires with this fake once the server closes the connection.  If the
        handler waits on something else (a Clock, another Deferred), make that
        happen and call `flush`.
        """
        done: Deferred[FakeAGI] = Deferred()
        client = _FakeAGIProtocol(self, done, "agi://127.0.0.1/")
        peer = IPv4Address("TCP", "127.0.0.1", next(_ports))
        host = IPv4Address("TCP", "127.0.0.1", 4573)
        server = factory.buildProtocol(host)
        assert server is not None
        server_io = _iosim.FakeTransport(server, isServer=True, hostAddress=host, peerAddress=peer)
        client_io = _iosim.FakeTransport(
            client, isServer=False, hostAddress=peer, peerAddress=host
        )
        server_side: Any = server
        server_side.makeConnection(server_io)
        client_side: Any = client
        client_side.makeConnection(client_io)
        pump_clock: Any = clock if clock is not None and hasattr(clock, "advance") else None
        make_pump: Any = ChunkPump
        self._pump = make_pump(client, server, client_io, server_io, False, clock=pump_clock)
        self.flush()
        return done

    def flush(self) -> None:
        """Move every byte the in-memory connection of `run` can move now."""
        if self._pump is None:
            raise RuntimeError("flush() needs a connection made by run()")
        self._pump.flush()

    def connect(self, reactor: IReactorTCP, host: str, port: int) -> Deferred[FakeAGI]:
        """
        Connect over TCP to a FastAGI server at ``host:port``, as Asterisk's
        ``AGI(agi://host:port/script)`` does.  Fires with this fake once the
        server closes the connection, or fails if it cannot connect.
        """
        done: Deferred[FakeAGI] = Deferred()
        factory = _FakeAGIClientFactory(self, done, f"agi://{host}:{port}/")
        reactor.connectTCP(host, port, factory)
        return done


_MODEL: dict[str, Callable[[FakeAGI, list[str]], str | list[str] | None]] = {
    "answer": FakeAGI._answer,
    "asyncagi break": FakeAGI._asyncagi_break,
    "channel status": FakeAGI._channel_status,
    "database del": FakeAGI._database_del,
    "database deltree": FakeAGI._database_deltree,
    "database get": FakeAGI._database_get,
    "database put": FakeAGI._database_put,
    "exec": FakeAGI._exec,
    "get data": FakeAGI._get_data,
    "get full variable": FakeAGI._get_full_variable,
    "get option": FakeAGI._get_option,
    "get variable": FakeAGI._get_variable,
    "hangup": FakeAGI._hangup,
    "noop": FakeAGI._noop,
    "say alpha": FakeAGI._say_alpha,
    "say digits": FakeAGI._say_digits,
    "say number": FakeAGI._say_number,
    "set autohangup": FakeAGI._set_autohangup,
    "set callerid": FakeAGI._set_callerid,
    "set context": FakeAGI._set_context,
    "set extension": FakeAGI._set_extension,
    "set music": FakeAGI._set_music,
    "set priority": FakeAGI._set_priority,
    "set variable": FakeAGI._set_variable,
    "stream file": FakeAGI._stream_file,
    "verbose": FakeAGI._verbose,
    "wait for digit": FakeAGI._wait_for_digit,
}


class _FakeAGIProtocol(LineReceiver):
    """The socket side of `FakeAGI`: sends the environment, answers each line."""

    delimiter = b"\n"
    MAX_LENGTH = 8191  # Asterisk reads a command line into an 8 KiB buffer

    def __init__(self, fake: FakeAGI, done: Deferred[FakeAGI], request: str) -> None:
        self.fake = fake
        self.done = done
        self.request = request

    def connectionMade(self) -> None:
        self.fake._send = self._send
        text = self.fake.environment_text(self.request)
        self.transport.write(text.encode("utf-8", "surrogateescape"))  # type: ignore[union-attr]

    def _send(self, line: str) -> None:
        self.transport.write(line.encode("utf-8", "surrogateescape") + b"\n")  # type: ignore[union-attr]

    def lineReceived(self, line: bytes) -> None:
        for reply in self.fake.reply(line.decode("utf-8", "surrogateescape")):
            self._send(reply)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self.fake._send = None
        if not self.done.called:
            self.done.callback(self.fake)


class _FakeAGIClientFactory(ClientFactory):
    noisy = False

    def __init__(self, fake: FakeAGI, done: Deferred[FakeAGI], request: str) -> None:
        self.fake = fake
        self.done = done
        self.request = request

    def buildProtocol(self, addr: Any) -> Protocol:
        return _FakeAGIProtocol(self.fake, self.done, self.request)

    def clientConnectionFailed(self, connector: Any, reason: Failure) -> None:
        if not self.done.called:
            self.done.errback(reason)


class FakeAsyncAGI:
    """
    AsyncAGI on a `FakeAsterisk`: answers the ``AGI`` action from `FakeAGI`
    channels and raises the events Asterisk raises.

    `start` puts a channel in AsyncAGI (``AsyncAGIStart``, with the
    URL-encoded ``Env``); each ``AGI`` action for it is answered ``Added AGI
    command to queue`` and followed by ``AsyncAGIExec`` (the reply URL-encoded
    in ``Result``, the action's ``CommandID`` in ``CommandId``); ``ASYNCAGI
    BREAK``, a HANGUP command or `end` raise ``AsyncAGIEnd``.  An action for
    a channel not in AsyncAGI is refused as Asterisk refuses it.
    """

    def __init__(self, fake: FakeAsterisk) -> None:
        self.fake = fake
        #: The channels in AsyncAGI, by name.
        self.channels: dict[str, FakeAGI] = {}
        fake.add_action("AGI", self._agi_action, privilege="agi")

    def start(self, channel: FakeAGI) -> None:
        """Put ``channel`` in ``AGI(agi:async)``."""
        channel._async = True
        self.channels[channel.channel] = channel
        env = channel.environment_text()
        self.fake.emit_event(
            "AsyncAGIStart", [*self._headers(channel), ("Env", url_quote(env, safe="()"))]
        )

    def end(self, channel: FakeAGI) -> None:
        """The channel leaves AsyncAGI (``AsyncAGIEnd``), e.g. after `FakeAGI.hang_up`."""
        if self.channels.pop(channel.channel, None) is not None:
            self.fake.emit_event("AsyncAGIEnd", self._headers(channel))

    def hang_up(self, channel: FakeAGI) -> None:
        """The caller hangs up: the channel's AsyncAGI ends."""
        channel.hang_up()
        self.end(channel)

    @staticmethod
    def _headers(channel: FakeAGI) -> list[tuple[str, str]]:
        return [
            ("Privilege", "agi,all"),
            ("Channel", channel.channel),
            ("ChannelState", str(channel.state)),
            ("CallerIDNum", channel.caller_id),
            ("CallerIDName", channel.caller_id_name),
            ("Context", channel.context),
            ("Exten", channel.extension),
            ("Priority", str(channel.priority)),
            ("Uniqueid", channel.uniqueid),
        ]

    def _agi_action(self, session: FakeSession, action: Message) -> Message:
        name = action.get("Channel", "") or ""
        command = action.get("Command", "") or ""
        command_id = action.get("CommandID", "") or ""
        if not name or not command:
            return response(action, "Both, Channel and Command are *required*", status="Error")
        channel = self.channels.get(name)
        if channel is None:
            return response(action, f"Channel {name} does not exist.", status="Error")
        # Raised while the action is handled, so the session gets it after the response.
        self._run(channel, command, command_id)
        return response(action, "Added AGI command to queue")

    def _run(self, channel: FakeAGI, command: str, command_id: str) -> None:
        if self.channels.get(channel.channel) is not channel:
            return
        lines = [line for line in channel.reply(command) if line != "HANGUP"]
        result = "".join(f"{line}\n" for line in lines)
        headers = [*self._headers(channel), ("Result", url_quote(result, safe="()"))]
        if command_id:
            headers.append(("CommandId", command_id))
        self.fake.emit_event("AsyncAGIExec", headers)
        words = [w.lower() for w in parse_args(command)]
        if words[:2] == ["asyncagi", "break"] or channel.hung_up:
            self.end(channel)
