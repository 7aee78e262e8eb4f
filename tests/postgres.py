"""A throwaway PostgreSQL server for tests and benchmarks: Debian's binaries, a fresh cluster in
a temporary folder, listening on 127.0.0.1 only, stopped (and its files removed) at the end."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """`wrapper` runs every command under another (e.g. `ip netns exec NS`: the server then
    listens on that network namespace's own 127.0.0.1)."""

    def __init__(self, root: Path | None = None, port: int | None = None, wrapper: tuple[str, ...] = (),
                 listen: str = "127.0.0.1", trusted: str | None = None):
        self.bin = postgres_bin()
        if self.bin is None:
            raise RuntimeError("PostgreSQL server binaries not found (apt-get install postgresql)")
        self.root = Path(root or tempfile.mkdtemp(prefix="pg-"))
        self.port = port or _free_port()
        self.data = self.root / "data"
        self.wrapper = tuple(wrapper)
        self.listen = listen  # listen_addresses: a host of a test's own adds its own address
        self.trusted = trusted  # a network (CIDR) whose clients may connect without a password

    def _prefix(self) -> list[str]:
        # The server refuses to run as root: run it as the postgres user when we are root.
        return [*self.wrapper, *(["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else [])]

    def _run(self, *args: str) -> None:
        subprocess.run([*self._prefix(), *args], check=True, capture_output=True, text=True, timeout=120)

    def start(self) -> "PostgresServer":
        self.root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")
        if self.trusted:
            with open(self.data / "pg_hba.conf", "a") as hba:
                hba.write(f"host all all {self.trusted} trust\n")
        self.resume()
        return self

    def halt(self) -> None:
        """Stop the server and keep its files (a database that went away); `resume` restarts it."""
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def resume(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses={self.listen} -c fsync=on"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options,
                  "-l", str(self.root / "server.log"), "-w", "start")

    def sql(self, database: str, statement: str) -> str:
        """Run one statement with psql; its output, unaligned."""
        result = subprocess.run(
            [*self._prefix(), str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
             "-d", database, "-At", "-c", statement],
            check=True, capture_output=True, text=True, timeout=60)
        return result.stdout.strip()

    def create_database(self, name: str) -> str:
        self._run(str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return self.url(name)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def started_postgres() -> PostgresServer:
    """A started server; fails the test where PostgreSQL is not installed (it cannot check)."""
    import pytest

    if postgres_bin() is None:
        pytest.fail("PostgreSQL server binaries are not installed: apt-get install postgresql "
                    "(scripts/test.sh does as root)")
    return PostgresServer().start()
