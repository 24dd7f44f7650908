"""Spool failures answer 451/452 and lose nothing already accepted."""
import shutil
import smtplib
import subprocess
import time

import pytest

from conftest import wait_for


def send(port: int, body: bytes):
    with smtplib.SMTP("127.0.0.1", port) as client:
        return client.sendmail("a@example.org", ["b@example.com"], body)


def relay_with_broken_maildir(start_relay, data, name: str):
    """Starts a relay on `data` whose maildir folder `name` (`tmp` or
    `new`) is then replaced with a file: nothing can be written in it or
    moved into it. Returns the relay and that folder's path."""
    relay = start_relay(data_dir=data)
    folder = data / "mail" / name
    folder.rmdir()
    folder.write_text("not a folder")
    return relay, folder


def mend_folder(folder):
    folder.unlink()
    folder.mkdir()


def test_failed_spool_write_answers_451_and_keeps_earlier_mail(relay):
    send(relay.port, b"Subject: first\r\n\r\nkept\r\n")
    assert len(relay.maildir_messages(1)) == 1
    # Neither the maildir (a local message is delivered before its 250) nor
    # the spool (where it goes when that fails) can be written.
    broken = [relay.data_dir / "spool" / "queue", relay.data_dir / "mail" / "tmp"]
    for folder in broken:
        shutil.rmtree(folder)
        folder.write_text("not a folder")
    # Larger than the journal takes (256 KiB): its file is what makes it durable.
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(relay.port, b"Subject: second\r\n\r\n" + b"refused\r\n" * 30000)
    assert refused.value.smtp_code == 451
    assert refused.value.smtp_error == b"4.3.0 Error: could not queue the message; try again later"
    assert "cannot spool message" in relay.log
    for folder in broken:
        folder.unlink()
        folder.mkdir()
    send(relay.port, b"Subject: third\r\n\r\naccepted again\r\n")
    messages = relay.maildir_messages(2)
    assert [m.split(b"Subject: ")[1].split(b"\r\n")[0] for m in messages] == [b"first", b"third"]


def test_a_small_message_the_journal_holds_waits_for_a_queue_folder_it_cannot_be_written_to(relay):
    """A small message is durable in the spool's journal before its 250;
    its queue file comes later. While neither the maildir nor the queue
    folder can be written, it waits in the journal (the failed writes are
    logged and tried again); a stop once the folders are back writes its
    file, and it is delivered once."""
    broken = [relay.data_dir / "spool" / "queue", relay.data_dir / "mail" / "tmp"]
    for folder in broken:
        shutil.rmtree(folder)
        folder.write_text("not a folder")
    assert send(relay.port, b"Subject: kept\r\n\r\nin the journal\r\n") == {}
    relay.wait_log("cannot write the file of a queued message the journal holds")
    for folder in broken:
        mend_folder(folder)
    relay.stop()
    assert len(relay.spool_files()) == 1
    relay.start()
    [message] = relay.maildir_messages(1)
    assert b"Subject: kept\r\n" in message
    assert relay.wait_spool_empty() == []
    time.sleep(1)
    assert len(relay.maildir_messages()) == 1


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
    assert relay.wait_spool_empty() == []
    assert list((relay.data_dir / "spool" / "corrupt").iterdir()) == []


def test_failed_delivery_keeps_message_in_spool_until_it_succeeds(start_relay, tmp_path):
    data = tmp_path / "deferred"
    relay, tmp = relay_with_broken_maildir(start_relay, data, "tmp")
    # Delivery before the 250 fails: the message is spooled and acknowledged.
    assert send(relay.port, b"Subject: deferred\r\n\r\nwaits in the spool\r\n") == {}
    for _ in range(100):
        if "delivery deferred" in relay.log:
            break
        time.sleep(0.05)
    assert "delivery deferred" in relay.log
    # The journal holds it; its file follows within half a second.
    assert wait_for(lambda: len(relay.spool_files()) == 1)
    relay.stop()
    mend_folder(tmp)
    second = start_relay(data_dir=data)
    [delivered] = second.maildir_messages(1)
    assert delivered.endswith(b"Subject: deferred\r\n\r\nwaits in the spool\r\n")
    assert list(tmp.iterdir()) == []
    assert second.wait_spool_empty() == []


def test_message_durable_in_tmp_is_acknowledged_when_new_cannot_take_it(start_relay, tmp_path):
    data = tmp_path / "unmovable"
    relay, new = relay_with_broken_maildir(start_relay, data, "new")
    # The file is durable in tmp/ before the 250, so the message is
    # delivered although its move into new/ fails: nothing is spooled.
    assert send(relay.port, b"Subject: unmovable\r\n\r\nfinished at the next start\r\n") == {}
    relay.wait_log("cannot move it into new/")
    [kept] = list((data / "mail" / "tmp").iterdir())
    written = kept.read_bytes()
    assert written.endswith(b"Subject: unmovable\r\n\r\nfinished at the next start\r\n")
    assert relay.spool_files() == []
    relay.stop()
    mend_folder(new)
    second = start_relay(data_dir=data)
    assert second.maildir_messages(1) == [written]
    assert list((data / "mail" / "tmp").iterdir()) == []
    assert "finished interrupted maildir deliveries" in second.log


def test_corrupt_spool_file_is_moved_aside(start_relay, tmp_path):
    data = tmp_path / "corrupt"
    (data / "spool" / "queue").mkdir(parents=True)
    (data / "spool" / "queue" / "HOM0000000001").write_bytes(b"{not json\nSubject: x\r\n\r\n")
    relay = start_relay(data_dir=data)
    corrupt = data / "spool" / "corrupt" / "HOM0000000001"
    for _ in range(100):
        if corrupt.exists():
            break
        time.sleep(0.05)
    assert corrupt.read_bytes() == b"{not json\nSubject: x\r\n\r\n"
    assert relay.spool_files() == []
    assert "queued message is corrupt" in relay.log


def test_spool_file_a_crash_cut_short_is_set_aside_not_delivered(start_relay, tmp_path):
    """A message's spool file has its queue name before the flush that makes
    it durable; the seal in its envelope line (content size and CRC-32C)
    tells a whole file from a write a crash interrupted. Such a message was
    never acknowledged: it goes to the corrupt folder, the whole ones are delivered."""
    data = tmp_path / "sealed"
    files = spooled_by_subject(start_relay, data, ["whole", "cut short", "changed"], lines=100)
    assert all(b'"contentCRC32C":' in f.read_bytes().split(b"\n")[0] for f in files.values())
    cut = files[b"cut short"]
    cut.write_bytes(cut.read_bytes()[:-40])
    changed = files[b"changed"]
    body = bytearray(changed.read_bytes())
    body[-10] ^= 0x01
    changed.write_bytes(bytes(body))
    second = start_relay(data_dir=data)
    [delivered] = second.maildir_messages(1)
    assert b"Subject: whole\r\n" in delivered
    assert second.wait_spool_empty() == []
    corrupt = data / "spool" / "corrupt"
    assert sorted(p.name for p in corrupt.iterdir()) == sorted([cut.name, changed.name])
    assert (corrupt / changed.name).read_bytes() == bytes(body)
    assert "spool file is incomplete" in second.log
    assert "does not match its CRC-32C" in second.log
    time.sleep(0.5)
    assert len(second.maildir_messages()) == 1


def test_a_file_a_crash_caught_between_hand_over_and_rename_is_recycled(start_relay, tmp_path):
    """A delivered message's file is written over by the next message and
    then renamed to it; a crash between the two leaves the new message's
    bytes under the delivered one's name. Neither is owed (the new one was
    never acknowledged): the file is recycled, not delivered and not set
    aside as corrupt, and the other queued message is delivered."""
    data = tmp_path / "handed-over"
    files = spooled_by_subject(start_relay, data, ["delivered", "never acknowledged", "queued"], lines=20)
    delivered, unacknowledged = files[b"delivered"], files[b"never acknowledged"]
    delivered.write_bytes(unacknowledged.read_bytes())
    unacknowledged.unlink()
    second = start_relay(data_dir=data)
    [message] = second.maildir_messages(1)
    assert b"Subject: queued\r\n" in message
    assert second.wait_spool_empty() == []
    assert list((data / "spool" / "corrupt").iterdir()) == []
    assert "holds another message's envelope" in second.log
    kept = [f.read_bytes() for f in (data / "spool" / "free").iterdir()]
    assert any(b"Subject: never acknowledged\r\n" in f for f in kept)
    time.sleep(0.5)
    assert len(second.maildir_messages()) == 1


def spooled_by_subject(start_relay, data, subjects: list[str], lines: int) -> dict:
    """Sends a message per subject to a relay whose maildir cannot be
    written, so each is spooled (and acknowledged) instead of delivered;
    stops the relay, makes the maildir writable again and returns the
    spool files by subject."""
    relay, tmp = relay_with_broken_maildir(start_relay, data, "tmp")
    for name in subjects:
        assert send(relay.port, f"Subject: {name}\r\n\r\n".encode() + b"line of the body\r\n" * lines) == {}
    assert wait_for_files(relay, len(subjects))
    relay.stop()
    mend_folder(tmp)
    return {f.read_bytes().split(b"Subject: ")[1].split(b"\r\n")[0]: f for f in relay.spool_files()}


def wait_for_files(relay, count: int) -> bool:
    for _ in range(100):
        if len(relay.spool_files()) == count and "delivery deferred" in relay.log:
            return True
        time.sleep(0.05)
    return False


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def test_maildir_delivery_a_crash_interrupted_is_finished_at_start(start_relay, tmp_path):
    """A maildir file counts as delivered once durable in tmp/ under a name
    carrying its seal (,RS=<size>,RC=<crc32c>); the move into new/ follows
    without a second flush. A start finishes what a crash interrupted, in
    every maildir the relay ever wrote to (spool/maildirs): whole files are
    moved into new/, files cut short deleted, other programs' files left alone."""
    data = tmp_path / "interrupted"
    relay = start_relay(data_dir=data)
    assert send(relay.port, b"Subject: first\r\n\r\nregisters the maildir\r\n") == {}
    assert len(relay.maildir_messages(1)) == 1
    relay.stop()
    mail = data / "mail"
    assert (data / "spool" / "maildirs").read_text() == f"{mail.resolve()}\n"
    assert list((mail / "tmp").iterdir()) == []
    whole = b"Subject: whole\r\n\r\n" + b"delivered before the crash\r\n" * 50
    (mail / "tmp" / f"1796000000.RHOM0000000042.host,RS={len(whole)},RC={crc32c(whole):x}").write_bytes(whole)
    cut = whole[:-30]
    (mail / "tmp" / f"1796000000.RHOM0000000043.host,RS={len(whole)},RC={crc32c(whole):x}").write_bytes(cut)
    (mail / "tmp" / "1796000000.M1P2.other-mda").write_bytes(b"Subject: not ours\r\n\r\n")
    second = start_relay(data_dir=data)
    assert (mail / "new" / "1796000000.RHOM0000000042.host").read_bytes() == whole
    assert sorted(p.name for p in (mail / "tmp").iterdir()) == ["1796000000.M1P2.other-mda"]
    assert len(second.maildir_messages()) == 2
    assert "finished interrupted maildir deliveries" in second.log
