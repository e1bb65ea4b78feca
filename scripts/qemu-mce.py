#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Raise machine checks in a QEMU guest through its human monitor.

    qemu-mce.py SOCKET REQUESTS LOG

scripts/vm.sh runs this beside a guest. The guest asks for machine checks
by writing lines to its third serial port (REQUESTS, a file on the host):

    mce ADDR MISC COUNT STRIDE

raises COUNT action-optional memory errors (a memory scrubbing error,
uncorrected, no action required: MCi_STATUS 0xbd000000000000c0,
MCG_STATUS RIPV|MCIP) at ADDR, ADDR + STRIDE, ..., each reported with
MCi_MISC = MISC (0x8c: a physical address with 4 KiB granularity, LSB 12;
0x95: 2 MiB), broadcast to every vCPU (-b), as a platform's memory
controller reports a patrol scrub error. Numbers are hex or decimal.

QEMU raises a triple fault if a machine check arrives while the guest is
still in the handler of the one before (MCG_STATUS.MCIP), so a burst is
paced: one error every PACE seconds (DPF_MCE_PACE, default 0.05).

Each request is answered in LOG ("done N" after the Nth request's last
error, or "error N: ..."), which the guest cannot read; the guest waits for
the errors' effects in its own kernel log instead.
"""

import os
import socket
import sys
import time

STATUS = 0xBD000000000000C0
MCG_STATUS = 0x5
BANK = 1


def connect(path, deadline):
    while True:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(path)
            return s
        except OSError:
            s.close()
            if time.time() > deadline:
                raise
            time.sleep(0.2)


def command(sock, line):
    """Send one HMP command and read up to the next prompt."""
    sock.sendall(line.encode() + b"\n")
    out = b""
    while not out.endswith(b"(qemu) "):
        chunk = sock.recv(4096)
        if not chunk:
            raise OSError("monitor closed")
        out += chunk
    return out.decode(errors="replace")


def main():
    sock_path, requests, log_path = sys.argv[1:4]
    pace = float(os.environ.get("DPF_MCE_PACE", "0.05"))
    sock = connect(sock_path, time.time() + 60)
    sock.settimeout(30)
    banner = b""
    while not banner.endswith(b"(qemu) "):
        banner += sock.recv(4096)
    done = 0
    with open(log_path, "a", buffering=1) as log:
        while True:
            try:
                with open(requests, "rb") as f:
                    lines = f.read().decode(errors="replace").replace("\r", "").split("\n")
            except FileNotFoundError:
                lines = []
            # Only complete lines count; the last may still be written.
            for line in lines[done:-1]:
                done += 1
                words = line.split()
                try:
                    if len(words) != 5 or words[0] != "mce":
                        raise ValueError(f"not 'mce ADDR MISC COUNT STRIDE': {line!r}")
                    addr, misc, count, stride = (int(w, 0) for w in words[1:])
                    for i in range(count):
                        reply = command(sock, f"mce -b 0 {BANK} {STATUS:#x} {MCG_STATUS:#x} "
                                              f"{addr + i * stride:#x} {misc:#x}")
                        if "rror" in reply:
                            raise OSError(reply.strip())
                        time.sleep(pace)
                    log.write(f"done {done}: {count} at {addr:#x} misc {misc:#x}\n")
                except (ValueError, OSError) as e:
                    log.write(f"error {done}: {e}\n")
            time.sleep(0.2)


if __name__ == "__main__":
    try:
        main()
    except (OSError, KeyboardInterrupt):
        pass
