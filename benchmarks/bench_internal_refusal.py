"""An unauthenticated 200 MB POST to the site-to-site API: how soon it is refused, and what it
costs the site's memory.

    python benchmarks/bench_internal_refusal.py [--mb 200] [--signed-wrong]

One real site (launcher.py, loopback). A client sends the request's head and then streams the
whole body as an attacker would, 1 MiB at a time, while another thread waits for the answer;
the site's resident memory is sampled every 10 ms from before the request until the client is
done. Prints the status, the seconds until it arrived, and the growth of the site's resident
memory (peak during the request minus before). Target (issue 10): < 1 s, < 20 MB.
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import running_sites  # noqa: E402

from web.peers.auth import signed_headers  # noqa: E402
from web.peers.transport import BATCH_PATH  # noqa: E402

CHUNK = b"\0" * (1024 * 1024)


def head(port: int, size: int, signed_wrong: bool) -> bytes:
    extra = signed_headers("not-the-secret", 1, "POST", BATCH_PATH, b"?") if signed_wrong else {}
    lines = [f"POST {BATCH_PATH} HTTP/1.1", f"Host: 127.0.0.1:{port}",
             "Content-Type: application/octet-stream", f"Content-Length: {size}",
             *(f"{k}: {v}" for k, v in extra.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def attack(port: int, megabytes: int, signed_wrong: bool) -> tuple[str, float, int]:
    """(status line, seconds until it arrived, bytes of body the client got to send)."""
    sock = socket.create_connection(("127.0.0.1", port))
    answer: dict = {}
    started = time.perf_counter()

    def read_answer() -> None:
        line = sock.makefile("rb").readline().decode().strip()
        answer["status"], answer["after_s"] = line, time.perf_counter() - started

    reader = threading.Thread(target=read_answer)
    reader.start()
    sent = 0
    try:
        sock.sendall(head(port, megabytes * len(CHUNK), signed_wrong))
        for _ in range(megabytes):
            sock.sendall(CHUNK)
            sent += len(CHUNK)
    except OSError:  # the site closed the connection: the rest of the body is not wanted
        pass
    reader.join(timeout=60)
    sock.close()
    return answer.get("status", "(no answer)"), answer.get("after_s", float("nan")), sent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--signed-wrong", action="store_true", help="sign with a wrong secret "
                        "rather than not at all")
    args = parser.parse_args()
    with running_sites(count=1) as sites:
        process = sites.process(0)
        before = process.memory_info().rss
        peak, done = [before], threading.Event()

        def sample() -> None:
            while not done.is_set():
                peak[0] = max(peak[0], process.memory_info().rss)
                time.sleep(0.01)

        sampler = threading.Thread(target=sample)
        sampler.start()
        status, after_s, sent = attack(sites.base_port, args.mb, args.signed_wrong)
        time.sleep(0.5)  # anything the site still does with the request shows in the samples
        done.set()
        sampler.join()
    growth_mb = (peak[0] - before) / 2**20
    print(f"unauthenticated {args.mb} MB POST {BATCH_PATH}: {status} after {after_s:.3f} s; "
          f"client sent {sent / 2**20:.0f} MB of body; site memory +{growth_mb:.1f} MB "
          f"(peak RSS {peak[0] / 2**20:.0f} MB, before {before / 2**20:.0f} MB)")
    return 0 if status.startswith("HTTP/1.1 401") and after_s < 1 and growth_mb < 20 else 1


if __name__ == "__main__":
    sys.exit(main())
