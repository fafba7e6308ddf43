"""A real PostgreSQL server for the run history's tests: Debian's ``postgresql`` package (``make test``
installs it when run as root with apt), started on a temporary data folder and a free loopback port,
as an unprivileged user (``postgres`` when the tests run as root: the server refuses to run as root),
trust authentication on loopback only, stopped and deleted at the end. Where it cannot be started,
``reason`` says why and the tests that need it skip with that reason; nothing is mocked."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def postgres_server() -> Iterator[tuple[str | None, str]]:
    """Yields (URL, "") for a running server, or (None, the reason) where none could be started."""
    bindir = _bin()
    if bindir is None:
        yield None, "Debian's postgresql is not installed (no /usr/lib/postgresql/*/bin/initdb; `make test` installs it as root)"
        return
    prefix: list[str] = []
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            yield None, "running as root and there is no postgres user to run the server as"
            return
        runuser = shutil.which("runuser")
        if runuser is None:
            yield None, "running as root without runuser to start the server as the postgres user"
            return
        prefix = [runuser, "-u", "postgres", "--"]
    folder = Path(tempfile.mkdtemp(prefix="marginopt-pg-"))
    if prefix:
        os.chown(folder, user.pw_uid, user.pw_gid)
    data, log = folder / "data", folder / "server.log"
    port = _free_port()
    started = False
    try:
        init = subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                               "--encoding=UTF8", "--no-sync"], capture_output=True, text=True, timeout=120)
        if init.returncode != 0:
            yield None, f"initdb failed: {(init.stderr or init.stdout).strip().splitlines()[-1:]}"
            return
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        start = subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w",
                                "-t", "60", "start"], capture_output=True, text=True, timeout=120)
        if start.returncode != 0:
            tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.exists() else []
            yield None, f"pg_ctl start failed: {(start.stderr or start.stdout).strip()} {tail}"
            return
        started = True
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres", ""
    finally:
        if started:
            subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                           capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)
