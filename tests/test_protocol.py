"""Byte-exact dialogues with the real server: pipelining, BDAT, limits,
bare CR/LF (SMTP smuggling), early talkers, error and connection limits."""
import re
import socket
import time

import pytest

from conftest import Dialog

EHLO_REPLY = (
    b"250-relay.test greets client.test\r\n250-PIPELINING\r\n250-SIZE 26214400\r\n"
    b"250-8BITMIME\r\n250-SMTPUTF8\r\n250-ENHANCEDSTATUSCODES\r\n250-CHUNKING\r\n250 DSN\r\n"
)


def test_greeting_and_ehlo(dialog):
    d = dialog()
    assert d.greeting == b"220 relay.test ESMTP Relais\r\n"
    assert d.ehlo() == EHLO_REPLY


def test_pipelined_transaction_gets_replies_in_order_in_one_batch(relay, dialog):
    d = dialog()
    d.ehlo()
    d.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\nDATA\r\n")
    assert d.replies(4) == (b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
                            b"354 End data with <CR><LF>.<CR><LF>\r\n")
    d.send(b"Subject: pipelined\r\n\r\nhello\r\n.\r\nRSET\r\nNOOP\r\nQUIT\r\n")
    out = d.replies(4)
    assert out.startswith(b"250 2.0.0 Ok: queued as ")
    assert out.endswith(b"\r\n250 2.0.0 Ok\r\n250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n")
    assert d.closed()
    [message] = relay.maildir_messages(1)
    assert message.endswith(b"Subject: pipelined\r\n\r\nhello\r\n")


def test_bdat_chunks(relay, dialog):
    d = dialog()
    d.ehlo()
    d.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\n")
    assert d.replies(2) == b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
    first = b"Subject: chunked\r\n\r\nline one\r"
    second = b"\nline two\r\n"
    d.send(b"BDAT %d\r\n" % len(first) + first)
    assert d.replies(1) == b"250 2.0.0 Ok: %d octets received\r\n" % len(first)
    # A chunk may contain what looks like commands and dots: it is data.
    d.send(b"BDAT %d LAST\r\n" % len(second) + second)
    assert d.replies(1).startswith(b"250 2.0.0 Ok: queued as ")
    [message] = relay.maildir_messages(1)
    assert message.endswith(b"Subject: chunked\r\n\r\nline one\r\nline two\r\n")


def test_bdat_content_is_not_interpreted(relay, dialog):
    d = dialog()
    d.ehlo()
    body = b"Subject: x\r\n\r\n.\r\nQUIT\r\n"
    d.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nBDAT %d LAST\r\n" % len(body) + body + b"NOOP\r\n")
    out = d.replies(4)
    assert out.startswith(b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok: queued as ")
    assert out.endswith(b"250 2.0.0 Ok\r\n")
    [message] = relay.maildir_messages(1)
    assert message.endswith(body)


def test_bdat_without_transaction_consumes_chunk(dialog):
    d = dialog()
    d.ehlo()
    d.send(b"BDAT 6\r\nNOOP\r\nNOOP\r\n")
    assert d.replies(2) == b"503 5.5.1 Error: need MAIL command\r\n250 2.0.0 Ok\r\n"


def test_bdat_with_bare_lf_is_refused(relay, dialog):
    d = dialog()
    d.ehlo()
    body = b"Subject: x\r\n\r\nsmuggle\n.\nMAIL FROM:<x@y>\r\n"
    d.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nBDAT %d LAST\r\n" % len(body) + body)
    assert d.replies(3) == (b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n"
                            b"550 5.6.0 Message refused: bare LF in message text; lines end with CRLF only\r\n")
    assert relay.maildir_messages(0, timeout=0.3) == []


def test_data_after_bdat_is_refused(dialog):
    d = dialog()
    d.ehlo()
    d.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nBDAT 3\r\nabcDATA\r\n")
    assert d.replies(4) == (b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.0.0 Ok: 3 octets received\r\n"
                            b"503 5.5.1 Error: DATA cannot follow BDAT in one transaction\r\n")


SMUGGLING = {
    "LF.LF": b"\n.\n",
    "LF.CRLF": b"\n.\r\n",
    "CRLF.LF": b"\r\n.\n",
    "CR.CR": b"\r.\r",
    "CRLF.CR": b"\r\n.\r",
    "CR.CRLF": b"\r.\r\n",
    "NUL": b"\0\r\n",
}


@pytest.mark.parametrize("name", SMUGGLING)
def test_smuggling_variants_are_refused_after_the_real_end(name, relay, dialog):
    d = dialog()
    d.ehlo()
    d.start_data()
    smuggled = b"MAIL FROM:<evil@example.org>\r\nRCPT TO:<victim@example.com>\r\nDATA\r\nforged\r\n"
    d.send(b"Subject: x\r\n\r\ntext" + SMUGGLING[name] + smuggled + b".\r\nNOOP\r\n")
    reply = d.replies(2)
    assert reply.startswith(b"550 5.6.0 Message refused: ")
    assert reply.endswith(b"\r\n250 2.0.0 Ok\r\n")
    assert relay.maildir_messages(0, timeout=0.3) == []
    assert relay.spool_files() == []


@pytest.mark.parametrize("line,reply", [
    (b"NOOP\n", b"500 5.5.2 Error: bare LF in command; lines end with CRLF only\r\n"),
    (b"NO\rOP\r\n", b"500 5.5.2 Error: bare CR in command; lines end with CRLF only\r\n"),
    (b"NO\0OP\r\n", b"500 5.5.2 Error: NUL character in command\r\n"),
    (b"NOOP " + b"x" * 600 + b"\r\n", b"500 5.5.2 Error: command line too long (512 octets at most)\r\n"),
    (b"FROB\r\n", b"500 5.5.2 Error: command not recognized\r\n"),
    (b"MAIL FROM:<a@example.org>\r\n", b"503 5.5.1 Error: send HELO/EHLO first\r\n"),
])
def test_bad_command_lines(line, reply, dialog):
    d = dialog()
    d.send(line + b"NOOP\r\n")
    assert d.replies(2) == reply + b"250 2.0.0 Ok\r\n"


def test_longest_command_line_is_accepted(dialog):
    d = dialog()
    line = b"NOOP " + b"x" * (512 - 7) + b"\r\n"
    assert len(line) == 512
    d.send(line)
    assert d.replies(1) == b"250 2.0.0 Ok\r\n"


def test_text_line_limit(relay, dialog):
    d = dialog()
    d.ehlo()
    d.start_data()
    d.send(b"Subject: x\r\n\r\n" + b"y" * 998 + b"\r\n.\r\n")
    assert d.replies(1).startswith(b"250 2.0.0 Ok: queued as ")
    d.start_data()
    d.send(b"Subject: x\r\n\r\n" + b"y" * 999 + b"\r\n.\r\n")
    assert d.replies(1) == b"550 5.6.0 Message refused: line longer than 1000 octets\r\n"


def test_size_limit(start_relay):
    relay = start_relay("--max-message-size", "1000")
    d = Dialog(relay.port)
    d.send(b"EHLO client.test\r\n")
    assert b"250-SIZE 1000\r\n" in d.replies(1)
    d.send(b"MAIL FROM:<a@example.org> SIZE=1001\r\n")
    assert d.replies(1) == b"552 5.3.4 Error: message exceeds fixed maximum message size\r\n"
    d.send(b"MAIL FROM:<a@example.org> SIZE=900\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
    d.replies(3)
    # The whole oversized message is read, then refused; the session goes on.
    d.send(b"Subject: big\r\n\r\n" + (b"z" * 100 + b"\r\n") * 50 + b".\r\nNOOP\r\n")
    assert d.replies(2) == (b"552 5.3.4 Error: message exceeds fixed maximum message size\r\n"
                            b"250 2.0.0 Ok\r\n")
    d.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nBDAT 600\r\n" + b"a" * 598 + b"\r\n")
    assert d.replies(3).endswith(b"250 2.0.0 Ok: 600 octets received\r\n")
    d.send(b"BDAT 600 LAST\r\n" + b"a" * 598 + b"\r\nNOOP\r\n")
    assert d.replies(2) == (b"552 5.3.4 Error: message exceeds fixed maximum message size\r\n"
                            b"250 2.0.0 Ok\r\n")
    assert relay.maildir_messages(0, timeout=0.3) == []
    d.close()


def test_too_many_recipients(start_relay):
    relay = start_relay("--max-recipients", "2")
    d = Dialog(relay.port)
    d.ehlo()
    d.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<1@example.com>\r\nRCPT TO:<2@example.com>\r\n"
           b"RCPT TO:<3@example.com>\r\n")
    assert d.replies(4) == (b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n250 2.1.5 Ok\r\n"
                            b"452 4.5.3 Error: too many recipients\r\n")
    d.close()


def test_relay_denied_outside_relay_networks(start_relay):
    relay = start_relay("--relay-network", "192.0.2.0/24", "--greeting-delay", "0")
    d = Dialog(relay.port)
    d.ehlo()
    d.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n")
    assert d.replies(3) == (b"250 2.1.0 Ok\r\n554 5.7.1 Relay access denied\r\n"
                            b"503 5.5.1 Error: need RCPT command\r\n")
    d.close()


def test_early_talker_is_refused(start_relay):
    relay = start_relay("--relay-network", "192.0.2.0/24", "--greeting-delay", "0.5")
    d = Dialog(relay.port, read_greeting=False)
    d.send(b"EHLO spammer.test\r\n")
    assert d.replies(1) == b"554 5.5.0 Error: you talked before the greeting; closing connection\r\n"
    assert d.closed()
    patient = Dialog(relay.port)
    assert patient.greeting == b"220 relay.test ESMTP Relais\r\n"
    patient.close()


def test_error_limit_disconnects(dialog):
    d = dialog()
    d.send(b"FROB\r\n" * 20)
    out = d.replies(21)
    assert out == b"500 5.5.2 Error: command not recognized\r\n" * 20 + \
        b"421 4.7.0 Error: too many errors; closing connection\r\n"
    assert d.closed()


def test_idle_timeout(start_relay):
    relay = start_relay("--command-timeout", "0.5")
    d = Dialog(relay.port)
    start = time.time()
    assert d.replies(1) == b"421 4.4.2 Error: timeout exceeded; closing connection\r\n"
    assert time.time() - start < 3
    assert d.closed()


def test_data_timeout(start_relay):
    relay = start_relay("--data-timeout", "0.5")
    d = Dialog(relay.port)
    d.ehlo()
    d.start_data()
    d.send(b"Subject: slow\r\n")
    assert d.replies(1) == b"421 4.4.2 Error: timeout exceeded; closing connection\r\n"
    assert relay.maildir_messages(0, timeout=0.3) == []


def test_connection_limits(start_relay):
    relay = start_relay("--max-connections", "2")
    first, second = Dialog(relay.port), Dialog(relay.port)
    third = Dialog(relay.port, read_greeting=False)
    assert third.replies(1) == b"421 4.7.0 Error: too many connections; try again later\r\n"
    first.close()
    time.sleep(0.2)
    fourth = Dialog(relay.port)
    assert fourth.greeting.startswith(b"220 ")
    second.close()
    fourth.close()


def test_per_ip_limit_applies_outside_relay_networks(start_relay):
    relay = start_relay("--relay-network", "192.0.2.0/24", "--greeting-delay", "0",
                        "--max-connections-per-ip", "1")
    first = Dialog(relay.port)
    second = Dialog(relay.port, read_greeting=False)
    assert second.replies(1) == (b"421 4.7.0 Error: too many connections from your address; "
                                 b"try again later\r\n")
    first.close()


def test_mail_loop_is_refused(relay, dialog):
    d = dialog()
    d.ehlo()
    d.start_data()
    d.send(b"Received: from x by y; Sun, 29 Nov 2026 00:00:00 +0000\r\n" * 101 + b"\r\nloop\r\n.\r\n")
    assert d.replies(1) == b"554 5.4.6 Error: too many Received headers; mail loop\r\n"
    d.start_data()
    d.send(b"Received: from x by y; Sun, 29 Nov 2026 00:00:00 +0000\r\n" * 100 + b"\r\nfine\r\n.\r\n")
    assert d.replies(1).startswith(b"250 2.0.0 Ok: queued as ")


@pytest.mark.parametrize("commands,replies", [
    (b"RCPT TO:<b@example.com>\r\n", b"503 5.5.1 Error: need MAIL command\r\n"),
    (b"DATA\r\n", b"503 5.5.1 Error: need MAIL command\r\n"),
    (b"MAIL FROM:<a@example.org>\r\nMAIL FROM:<a@example.org>\r\n",
     b"250 2.1.0 Ok\r\n503 5.5.1 Error: nested MAIL command\r\n"),
    (b"MAIL FROM:<a@example.org>\r\nDATA\r\n", b"250 2.1.0 Ok\r\n503 5.5.1 Error: need RCPT command\r\n"),
    (b"MAIL FROM:<a@example.org> FOO=BAR\r\n", b"555 5.5.4 Error: unsupported parameter FOO\r\n"),
    (b"MAIL FROM:<a@example.org> BODY=BINARYMIME\r\n", b"501 5.5.4 Error: BODY must be 7BIT or 8BITMIME\r\n"),
    (b"MAIL FROM:<\xc3\xa9@example.org>\r\n", b"553 5.6.7 Error: non-ASCII address requires SMTPUTF8\r\n"),
    (b"MAIL FROM:a@example.org\r\n", b"501 5.5.4 Syntax: MAIL FROM:<address>\r\n"),
    (b"MAIL FROM:<a..b@example.org>\r\n", b"501 5.1.7 Bad sender address syntax: empty atom in local part\r\n"),
    (b"VRFY someone\r\n", b"252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery\r\n"),
    (b"EXPN list\r\n", b"502 5.5.1 EXPN not supported\r\n"),
    (b"HELP\r\n", b"214 2.0.0 Commands: EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP\r\n"),
    (b"STARTTLS\r\n", b"502 5.5.1 Error: command not available\r\n"),
])
def test_command_sequence_replies(commands, replies, dialog):
    d = dialog()
    d.ehlo()
    d.send(commands)
    assert d.replies(replies.count(b"\r\n")) == replies


def test_helo_dialogue(dialog):
    d = dialog()
    d.send(b"HELO client.test\r\n")
    assert d.replies(1) == b"250 relay.test\r\n"


def test_graceful_stop_finishes_transaction_in_flight(relay, dialog):
    busy = dialog()
    busy.ehlo()
    busy.start_data()
    idle = dialog()
    relay.process.terminate()
    assert idle.replies(1) == b"421 4.3.2 Service shutting down; try again later\r\n"
    busy.send(b"Subject: in flight\r\n\r\nstill accepted\r\n.\r\n")
    out = busy.replies(2)
    assert out.startswith(b"250 2.0.0 Ok: queued as ")
    assert out.endswith(b"421 4.3.2 Service shutting down; try again later\r\n")
    assert relay.process.wait(timeout=10) == 0
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", relay.port), timeout=1)


def test_dialogue_sent_one_byte_at_a_time(relay, dialog):
    """The server frames input the same however the bytes are split."""
    d = dialog()
    d.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    session = (b"EHLO client.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\nDATA\r\n"
               b"Subject: slow\r\n\r\n..dot\r\n.\r\nBDAT 5\r\nxxxxxNOOP\r\nQUIT\r\n")
    for byte in session:
        d.send(bytes([byte]))
    out = d.replies(8)
    assert out.startswith(EHLO_REPLY + b"250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
                          b"250 2.0.0 Ok: queued as ")
    assert out.endswith(b"503 5.5.1 Error: need MAIL command\r\n250 2.0.0 Ok\r\n221 2.0.0 Bye\r\n")
    [message] = relay.maildir_messages(1)
    assert message.endswith(b"Subject: slow\r\n\r\n.dot\r\n")


def test_ipv6_listener(start_relay):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    relay = start_relay("--listen", "[::1]:0")
    try:
        log = relay.wait_log("address=::1:", timeout=3)
    except AssertionError:
        pytest.skip("::1 not available here")
    ports = re.findall(r"address=::1:(\d+)", log)
    if not ports:
        pytest.skip("::1 not available here")
    with socket.create_connection(("::1", int(ports[0])), timeout=5) as sock:
        assert sock.recv(100) == b"220 relay.test ESMTP Relais\r\n"
