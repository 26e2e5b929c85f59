from twisted.internet.defer import Deferred
from twisted.internet.task import react

import txami


async def main(reactor, host="pbx.example.com", port=5038):
    ami = await txami.connect(reactor, host, port, username="dashboard", secret="s3cret")
    ami.add_event_handler("Hangup", lambda event: print("hangup:", event["Channel"]))
    print((await ami.command("core show uptime"))[0])
    for channel in await ami.status():
        print(channel["Channel"], channel["ChannelStateDesc"])
    await ami.stop()


if __name__ == "__main__":
    react(lambda reactor: Deferred.fromCoroutine(main(reactor)))
