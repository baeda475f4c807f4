"""UDP read many datagrams per system call (recvmmsg) gives what one recvfrom per
datagram gives: the same payloads in order, the same sender for each, whatever the mix
of senders, families and sizes, and the socket left empty."""

from __future__ import annotations

import random
import socket

import pytest

from inetd2systemd.syslog import datagrams
from inetd2systemd.syslog.datagrams import SLOTS, DatagramReader, describe_peer

BIG = 1 << 30


def _receiver(family: int, host: str, dual_stack: bool = False) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if dual_stack else 1)
    sock.bind((host, 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    sock.setblocking(False)
    return sock


def _senders(specs: list[tuple[int, str]]) -> list[socket.socket]:
    out = []
    for family, host in specs:
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.bind((host, 0))
        out.append(s)
    return out


def _expected(sock: socket.socket) -> list[tuple[bytes, str]]:
    """One recvfrom per datagram, as the listener read them before."""
    got = []
    while True:
        try:
            data, address = sock.recvfrom(1 << 16)
        except BlockingIOError:
            return got
        got.append((data, describe_peer(address)))


def _batched(sock: socket.socket) -> list[tuple[bytes, str]]:
    reader = DatagramReader(sock)
    frames: list[bytes] = []
    senders: list[str] = []
    while True:
        before = len(frames)
        reader.read(frames, senders, BIG, BIG)
        if len(frames) == before:
            break
    assert reader.truncated == 0 and len(senders) == len(frames)
    return list(zip(frames, senders))


def _send_mix(receiver: socket.socket, senders: list[socket.socket], seed: int) -> None:
    rng = random.Random(seed)
    port = receiver.getsockname()[1]
    for i in range(3 * SLOTS + 7):
        size = rng.choice([0, 1, 260, 1500, 9000, 65_000])
        payload = (b"%05d" % i + bytes(rng.randrange(256) for _ in range(16)) * 4100)[:size]
        # Runs of one sender, then changes, as a busy relay and a few devices mix.
        sender = senders[(i // rng.choice([1, 5, 70])) % len(senders)]
        sender.sendto(payload, ("127.0.0.1" if sender.family == socket.AF_INET else "::1", port))


CASES = {
    "ipv4, three senders": (socket.AF_INET, "127.0.0.1", False,
                            [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET, "127.0.0.2"),
                             (socket.AF_INET, "127.0.0.3")]),
    "ipv6": (socket.AF_INET6, "::1", False, [(socket.AF_INET6, "::1")]),
    "dual stack, ipv4 and ipv6 senders": (socket.AF_INET6, "::", True,
                                          [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1"),
                                           (socket.AF_INET, "127.0.0.2")]),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("batched", [True, False], ids=["recvmmsg", "one-by-one"])
def test_batches_read_what_recvfrom_reads(case, batched, monkeypatch):
    family, host, dual, specs = CASES[case]
    if not batched:
        monkeypatch.setattr(datagrams, "_recvmmsg", None)
    try:
        receivers = [_receiver(family, host, dual) for _ in range(2)]
        senders = _senders(specs)
    except OSError as exc:  # no IPv6 on this host
        pytest.skip(f"cannot open the sockets: {exc}")
    try:
        for r in receivers:
            _send_mix(r, senders, seed=7)
        expected = _expected(receivers[0])
        got = _batched(receivers[1])
        assert len(expected) == 3 * SLOTS + 7
        assert got == expected
        assert {sender for _, sender in got} == {describe_peer((h,)) for _, h in specs} - {"::"}
    finally:
        for s in receivers + senders:
            s.close()


def test_limits_are_whole_calls_and_the_rest_stays_queued():
    receiver = _receiver(socket.AF_INET, "127.0.0.1")
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for i in range(3 * SLOTS):
            sender.sendto(b"%d" % i, receiver.getsockname())
        reader = DatagramReader(receiver)
        frames: list[bytes] = []
        senders: list[str] = []
        total = reader.read(frames, senders, 1, BIG)
        assert 1 <= len(frames) <= SLOTS and total == sum(map(len, frames))
        while reader.read(frames, senders, BIG, BIG):
            pass
        assert frames == [b"%d" % i for i in range(3 * SLOTS)]
        assert set(senders) == {"127.0.0.1"}
    finally:
        receiver.close()
        sender.close()


def test_an_empty_socket_reads_nothing():
    receiver = _receiver(socket.AF_INET, "127.0.0.1")
    try:
        frames: list[bytes] = []
        assert DatagramReader(receiver).read(frames, [], BIG, BIG) == 0 and frames == []
    finally:
        receiver.close()
