"""Spool failures answer 451/452 and lose nothing already accepted."""
import shutil
import smtplib
import subprocess

import pytest


def send(port: int, body: bytes):
    with smtplib.SMTP("127.0.0.1", port) as client:
        return client.sendmail("a@example.org", ["b@example.com"], body)


def test_failed_spool_write_answers_451_and_keeps_earlier_mail(relay):
    send(relay.port, b"Subject: first\r\n\r\nkept\r\n")
    assert len(relay.maildir_messages(1)) == 1
    spool_tmp = relay.data_dir / "spool" / "tmp"
    shutil.rmtree(spool_tmp)
    spool_tmp.write_text("not a folder")
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(relay.port, b"Subject: second\r\n\r\nrefused\r\n")
    assert refused.value.smtp_code == 451
    assert refused.value.smtp_error == b"4.3.0 Error: could not queue the message; try again later"
    assert "cannot spool message" in relay.log
    spool_tmp.unlink()
    spool_tmp.mkdir()
    send(relay.port, b"Subject: third\r\n\r\naccepted again\r\n")
    messages = relay.maildir_messages(2)
    assert [m.split(b"Subject: ")[1].split(b"\r\n")[0] for m in messages] == [b"first", b"third"]


@pytest.fixture
def small_disk(tmp_path):
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount_point)],
                            capture_output=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {result.stderr.decode().strip()}")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)])


def test_full_disk_answers_452_and_keeps_earlier_mail(start_relay, small_disk):
    relay = start_relay(data_dir=small_disk / "data")
    line = b"x" * 76 + b"\r\n"
    send(relay.port, b"Subject: small\r\n\r\n" + line * 1000)  # ~78 KB
    assert len(relay.maildir_messages(1)) == 1
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(relay.port, b"Subject: too big for the disk\r\n\r\n" + line * 6000)  # ~470 KB
    assert refused.value.smtp_code == 452
    assert refused.value.smtp_error == b"4.3.1 Error: insufficient system storage; try again later"
    [kept] = relay.maildir_messages(1)
    assert b"Subject: small" in kept
    assert relay.spool_files() == []
    assert list((relay.data_dir / "spool" / "tmp").iterdir()) == []
