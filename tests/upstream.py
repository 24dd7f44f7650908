"""A real upstream SMTP server for the tests: aiosmtpd (nobody here wrote
it), with behaviours chosen per test: accept, answer 421/451 at MAIL,
refuse one recipient, drop the connection in the middle of DATA, offer
PIPELINING (aiosmtpd reads commands one line at a time, so a pipelined
group is answered in order)."""
import asyncio
import socket
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Recorder:
    """Keeps every message the upstream accepted, with its envelope."""

    def __init__(self, mail_reply=None, refuse=(), drop_in_data=False, data_delay=None, pipelining=False):
        self.mail_reply = mail_reply
        self.pipelining = pipelining
        self.refuse = set(refuse)
        self.drop_in_data = drop_in_data
        # content -> seconds to wait before answering DATA
        self.data_delay = data_delay
        self.messages = []
        # when each message was accepted (time.time())
        self.times = []
        self.mail_commands = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            responses.insert(1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, options):
        self.mail_commands += 1
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, options):
        if address in self.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.data_delay:
            await asyncio.sleep(self.data_delay(envelope.original_content))
        if self.drop_in_data:
            server.transport.close()
            return "421 closing"
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        self.times.append(time.time())
        return "250 2.0.0 Accepted by the test upstream"


class CountingController(Controller):
    """Counts open connections, to check the relay's connection limit."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.open = 0
        self.most = 0

    def factory(self):
        controller = self

        class CountingSMTP(SMTP):
            def connection_made(self, transport):
                controller.open += 1
                controller.most = max(controller.most, controller.open)
                super().connection_made(transport)

            def connection_lost(self, error):
                controller.open -= 1
                super().connection_lost(error)

        return CountingSMTP(self.handler, **self.SMTP_kwargs)


class StalledServer:
    """Accepts TCP connections and never says a word (a hung upstream);
    counts the connections it accepted."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.accepted = 0
        self.sockets = []
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(1024)
        self.thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self):
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            self.sockets.append(connection)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        for connection in self.sockets:
            connection.close()
        self.thread.join(timeout=5)


class Upstream:
    def __init__(self, port=None, smtputf8=True, **behaviour):
        self.port = port or free_port()
        self.recorder = Recorder(**behaviour)
        self.controller = CountingController(self.recorder, hostname="127.0.0.1", port=self.port, decode_data=False,
                                             enable_SMTPUTF8=smtputf8)

    @property
    def messages(self):
        return self.recorder.messages

    def start(self):
        self.controller.start()
        return self

    def stop(self):
        self.controller.stop()
