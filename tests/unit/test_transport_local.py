"""hive_ssh against a throwaway sshd on 127.0.0.1 (started here); skips without sshd/root, fails under CI."""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from local_sshd import LocalSSHD, free_port, keygen, require, running_sshd

from hive_nornir.transport import (
    CONNECTION_NAME,
    AuthenticationFailed,
    CommandTimeout,
    ConnectionLost,
    ConnectionRefused,
    HiveSSH,
    HostKeyChanged,
    HostKeyUnknown,
    NoExitStatus,
    SSHSession,
    SudoPasswordRequired,
    build_params,
    connect,
    session_for,
)

# per test process: parallel unit runs on one machine (several worktrees) must not kill each other's users
_RUN = f"{os.getpid():x}"
SUDO_USER = f"hvt_s{_RUN}"
NOPW_USER = f"hvt_n{_RUN}"
SUDOERS = Path(f"/etc/sudoers.d/hive-transport-test-{_RUN}")


def _ssh_fp(pub: Path) -> str:
    """Fingerprint as OpenSSH prints it, to compare against ours."""
    out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(pub)], check=True,
                         capture_output=True, text=True).stdout
    return out.split()[1]


def _drop_user(name: str) -> None:
    subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True)
    subprocess.run(["userdel", "-r", "-f", name], capture_output=True)


@pytest.fixture(scope="module")
def sshd() -> Iterator[LocalSSHD]:
    """The sshd with a root login, a NOPASSWD sudo user and a user without sudo, each with the client key."""
    require(shutil.which("sudo") is not None, "sudo absent (apt-get install sudo)")

    def users(root: Path) -> None:
        ak = root / "authorized_keys"
        ak.mkdir(mode=0o755)
        for user in (SUDO_USER, NOPW_USER):
            _drop_user(user)
            subprocess.run(["useradd", "-m", "-p", "*", "-s", "/bin/sh", user], check=True)
        for user in ("root", SUDO_USER, NOPW_USER):
            (ak / user).write_bytes((root / "client.pub").read_bytes())
            (ak / user).chmod(0o644)
        SUDOERS.write_text(f"{SUDO_USER} ALL=(ALL) NOPASSWD:ALL\n")
        SUDOERS.chmod(0o440)

    try:
        with running_sshd("hive-sshd-", users, authorized_keys="{root}/authorized_keys/%u",
                          extra="Subsystem sftp internal-sftp\nAllowTcpForwarding yes\n"
                                "MaxStartups 100:30:200\nMaxSessions 50\nLogLevel VERBOSE\n") as server:
            yield server
    finally:
        SUDOERS.unlink(missing_ok=True)
        for user in (SUDO_USER, NOPW_USER):
            _drop_user(user)


@pytest.fixture
def root_session(sshd: LocalSSHD) -> SSHSession:
    return sshd.connect("root")


@pytest.fixture
def sudo_session(sshd: LocalSSHD) -> SSHSession:
    return sshd.connect(SUDO_USER)


# --------------------------------------------------------------------------------------------- commands


def test_status_stdout_stderr_split(root_session: SSHSession) -> None:
    r = root_session.run("echo out; echo err >&2; exit 7")
    assert (r.exit_status, r.stdout, r.stderr, r.ok) == (7, "out\n", "err\n", False)
    assert root_session.run("true").ok
    assert root_session.is_root and root_session.user == "root"


def test_multi_mb_stdout_and_stderr_no_deadlock(root_session: SSHSession) -> None:
    cmd = "head -c 3000000 /dev/zero | tr '\\0' e >&2; head -c 3000000 /dev/zero | tr '\\0' o; echo -n end"
    for _ in range(3):
        r = root_session.run(cmd, timeout=60)
        assert r.ok
        assert len(r.stderr) == 3_000_000 and set(r.stderr) == {"e"}
        assert len(r.stdout) == 3_000_003 and r.stdout.endswith("end")


def test_large_stdin_while_output_flows(root_session: SSHSession) -> None:
    data = os.urandom(2_000_000)
    r = root_session.run("cat; head -c 2000000 /dev/zero >&2", stdin=data, timeout=60)
    assert r.ok and len(r.stdout.encode("utf-8", errors="surrogateescape")) > 0 and len(r.stderr) == 2_000_000
    r = root_session.run("sha256sum", stdin=data)
    import hashlib

    assert r.stdout.split()[0] == hashlib.sha256(data).hexdigest()


def test_timeout_fails_cleanly_and_connection_stays_usable(root_session: SSHSession) -> None:
    marker = f"hvt-{uuid.uuid4().hex[:8]}"
    t0 = time.monotonic()
    with pytest.raises(CommandTimeout) as ei:
        root_session.run(f"sleep 30; echo {marker}", timeout=1)
    assert time.monotonic() - t0 < 2.5
    assert "127.0.0.1" in str(ei.value) and "timeout" in str(ei.value)
    r = root_session.run("echo still-here")
    assert r.ok and r.stdout == "still-here\n"
    assert root_session.is_alive()


def test_env_prefix(root_session: SSHSession, sudo_session: SSHSession) -> None:
    assert root_session.run('printf %s "$FOO"', env={"FOO": "a b'c"}).stdout == "a b'c"
    assert sudo_session.run('printf %s "$FOO"', env={"FOO": "x y"}).stdout == "x y"
    with pytest.raises(ValueError):
        root_session.run("true", env={"BAD-NAME": "1"})


def test_sudo_as_non_root(sudo_session: SSHSession) -> None:
    assert not sudo_session.is_root
    assert sudo_session.run("id -u").stdout.strip() == "0"
    assert sudo_session.run("echo $HOME").stdout.strip() == "/root"  # -H
    uid = pwd.getpwnam(SUDO_USER).pw_uid
    assert sudo_session.run("id -u", sudo=False).stdout.strip() == str(uid)


def test_sudo_password_required(sshd: LocalSSHD) -> None:
    s = sshd.connect(NOPW_USER)
    with pytest.raises(SudoPasswordRequired) as ei:
        s.run("true")
    assert NOPW_USER in str(ei.value) and "NOPASSWD" in str(ei.value)
    assert s.run("id -un", sudo=False).stdout.strip() == NOPW_USER


def test_script_and_secret_on_stdin_never_in_argv_or_logs(
    root_session: SSHSession, sudo_session: SSHSession, caplog: pytest.LogCaptureFixture
) -> None:
    """/proc/*/cmdline (what `ps` shows) holds neither the secret nor the script; a child's marker proves the scan."""
    caplog.set_level(logging.DEBUG)
    for session in (root_session, sudo_session):
        secret = f"s3cr3t-{uuid.uuid4().hex}"
        script_word = f"hvtscript{uuid.uuid4().hex[:6]}"
        seen: list[str] = []
        done = threading.Event()
        marker = f"hvtwait{uuid.uuid4().hex[:6]}"

        def scan(secret: str = secret, seen: list[str] = seen, marker: str = marker, done: threading.Event = done,
                 script_word: str = script_word) -> None:
            saw_marker = False
            while not done.is_set():
                for d in Path("/proc").iterdir():
                    if not d.name.isdigit():
                        continue
                    try:
                        argv = (d / "cmdline").read_bytes().decode(errors="replace")
                    except OSError:
                        continue
                    saw_marker = saw_marker or marker in argv
                    if secret in argv or script_word in argv:
                        seen.append(argv)
                time.sleep(0.02)
            seen.append(f"marker-seen={saw_marker}")

        th = threading.Thread(target=scan)
        th.start()
        try:
            r = session.run(f': {script_word}; read -r x; sh -c ": {marker}; sleep 1"; printf %s "$x" | wc -c',
                            stdin=secret + "\n")
            plain = session.run(f": {script_word}; sh -c ': {marker}; sleep 0.5'; echo plain")
        finally:
            done.set()
            th.join()
        assert r.ok and r.stdout.strip() == str(len(secret))
        assert plain.ok and plain.stdout == "plain\n"
        assert seen == ["marker-seen=True"], seen
        assert secret not in caplog.text


def test_commands_cannot_eat_the_script_and_data_follows_it(root_session: SSHSession) -> None:
    """A command that reads stdin gets EOF (not the rest of the script); with data, exactly the data."""
    r = root_session.run("cat\necho after-cat\nwc -c")
    assert (r.exit_status, r.stdout.split()) == (0, ["after-cat", "0"])
    data = os.urandom(300_000)
    r = root_session.run("set -e\nhead -c 10 >/dev/null\nsha256sum", stdin=data, timeout=60)
    import hashlib

    assert r.ok and r.stdout.split()[0] == hashlib.sha256(data[10:]).hexdigest()
    r = root_session.run("exit 5")
    assert r.exit_status == 5
    r = root_session.run("if true; then")  # a syntax error: nothing runs, the shell says why
    assert r.exit_status == 2 and "syntax error" in r.stderr.lower()


# --------------------------------------------------------------------------------------------- connect


def test_refused_port_is_fast_and_named(sshd: LocalSSHD) -> None:
    port = free_port()
    t0 = time.monotonic()
    with pytest.raises(ConnectionRefused) as ei:
        sshd.connect("root", port=port, connect_retries=0)
    assert time.monotonic() - t0 < 0.5
    assert f"127.0.0.1:{port}" in str(ei.value) and "sshd not listening" in str(ei.value)
    t0 = time.monotonic()
    with pytest.raises(ConnectionRefused):
        sshd.connect("root", port=port)  # default: 3 retries, back-off 0.5 + 1 + 2 s
    assert 3.4 < time.monotonic() - t0 < 5


def test_bad_key_is_authentication_failed_without_retry(sshd: LocalSSHD, tmp_path: Path) -> None:
    keygen(tmp_path / "other")
    t0 = time.monotonic()
    with pytest.raises(AuthenticationFailed) as ei:
        sshd.connect(SUDO_USER, key_file=str(tmp_path / "other"))
    assert time.monotonic() - t0 < 1.5
    msg = str(ei.value)
    assert SUDO_USER in msg and str(tmp_path / "other") in msg and _ssh_fp(tmp_path / "other.pub") in msg
    assert "PRIVATE KEY" not in msg


def test_tcp_nodelay_and_round_trips(root_session: SSHSession) -> None:
    assert root_session.tcp_nodelay
    before = root_session.round_trips
    for _ in range(3):
        root_session.run("true")
    assert root_session.round_trips == before + 3


def test_first_contact_recorded_then_reused(sshd: LocalSSHD, tmp_path: Path) -> None:
    kh = tmp_path / "sub" / "known_hosts"
    sshd.connect("root", known_hosts=str(kh)).close()
    host_key = sshd.host_pub.read_text().split()
    assert kh.read_text() == f"[127.0.0.1]:{sshd.port} {host_key[0]} {host_key[1]}\n"
    sshd.connect("root", known_hosts=str(kh), strict_host_key_checking="yes").close()
    assert len(kh.read_text().splitlines()) == 1


def test_parallel_first_contact_writes_one_line(sshd: LocalSSHD, tmp_path: Path) -> None:
    kh = tmp_path / "known_hosts"
    kh.write_text("# stage known hosts\n")
    errors: list[BaseException] = []

    def go() -> None:
        try:
            sshd.connect("root", known_hosts=str(kh)).close()
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=go) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    lines = kh.read_text().splitlines()
    assert lines[0] == "# stage known hosts" and len(lines) == 2


def test_unknown_host_refused_when_strict(sshd: LocalSSHD, tmp_path: Path) -> None:
    with pytest.raises(HostKeyUnknown):
        sshd.connect("root", known_hosts=str(tmp_path / "kh"), strict_host_key_checking="yes")
    assert not (tmp_path / "kh").exists()


def test_changed_host_key_refused_with_fix(sshd: LocalSSHD, tmp_path: Path) -> None:
    keygen(tmp_path / "impostor")
    old = (tmp_path / "impostor.pub").read_text().split()
    kh = tmp_path / "known_hosts"
    kh.write_text(f"# comment\n[127.0.0.1]:{sshd.port} {old[0]} {old[1]}\n")
    with pytest.raises(HostKeyChanged) as ei:
        sshd.connect("root", known_hosts=str(kh))
    msg = str(ei.value)
    for part in (f"[127.0.0.1]:{sshd.port}", str(kh), "line 2", _ssh_fp(tmp_path / "impostor.pub"),
                 _ssh_fp(sshd.host_pub), "remove line 2"):
        assert part in msg, (part, msg)
    assert kh.read_text().count("\n") == 2  # nothing recorded


# --------------------------------------------------------------------------------------------- files


def _stat(path: Path) -> tuple[str, str, str]:
    st = path.stat()
    return oct(stat.S_IMODE(st.st_mode)), pwd.getpwuid(st.st_uid).pw_name, str(st.st_gid)


def test_stage_and_upload_as_root(root_session: SSHSession, tmp_path: Path) -> None:
    target = tmp_path / "etc" / "app.conf"
    target.parent.mkdir()
    target.write_text("old\n")
    cand = root_session.stage_file(b"new\n", str(target), mode="0640", owner=SUDO_USER, group=SUDO_USER)
    assert Path(cand).parent == target.parent and Path(cand).name.startswith(".app.conf.hive-")
    assert target.read_text() == "old\n"  # untouched until renamed
    gid = str(pwd.getpwnam(SUDO_USER).pw_gid)
    assert _stat(Path(cand)) == ("0o640", SUDO_USER, gid)
    inode = Path(cand).stat().st_ino
    assert root_session.run(f"mv -f {cand} {target}").ok
    assert target.stat().st_ino == inode  # rename(2), not a copy
    before = root_session.round_trips
    root_session.upload(b"\x00bin\xff", str(target), mode="0600")
    assert target.read_bytes() == b"\x00bin\xff" and _stat(target) == ("0o600", "root", "0")
    assert root_session.round_trips - before == 2  # SFTP open + mv
    assert [p.name for p in target.parent.iterdir()] == ["app.conf"]


def test_stage_and_upload_via_sudo(sshd: LocalSSHD, tmp_path: Path) -> None:
    s = sshd.connect(SUDO_USER)
    target = tmp_path / "root-only" / "secret.conf"
    target.parent.mkdir(mode=0o700)
    mine = f".hive-{SUDO_USER}-"
    earlier = {p for p in Path("/var/tmp").iterdir() if p.name.startswith(mine)}  # other sessions' (killed runs)
    before = s.round_trips
    s.upload(b"token=42\n", str(target), mode="0600", owner="root", group="root")
    assert target.read_bytes() == b"token=42\n" and _stat(target) == ("0o600", "root", "0")
    assert [p.name for p in target.parent.iterdir()] == ["secret.conf"]
    staging = [p for p in Path("/var/tmp").iterdir() if p.name.startswith(mine) and p not in earlier]
    assert len(staging) == 1 and _stat(staging[0])[:2] == ("0o700", SUDO_USER)
    assert list(staging[0].iterdir()) == []
    print(f"\nsudo upload round trips (incl. sftp start + staging mkdir): {s.round_trips - before}")
    before = s.round_trips
    s.upload(b"token=43\n", str(target), mode="0640")
    assert s.round_trips - before == 3  # SFTP open, install, mv
    assert s.read_file(str(target)) == b"token=43\n"
    s.close()
    assert not staging[0].exists()


def test_read_file(root_session: SSHSession, sudo_session: SSHSession, tmp_path: Path) -> None:
    p = tmp_path / "blob"
    p.write_bytes(bytes(range(256)) * 10)
    assert root_session.read_file(str(p)) == bytes(range(256)) * 10
    assert sudo_session.read_file(str(p)) == bytes(range(256)) * 10
    assert root_session.read_file(str(tmp_path / "missing")) is None


def test_stage_file_rejects_bad_arguments(root_session: SSHSession) -> None:
    for kwargs in ({"path": "relative"}, {"path": "/x", "mode": "644; rm"}, {"path": "/x", "owner": "a b"}):
        with pytest.raises(ValueError):
            root_session.stage_file(b"", **kwargs)


# --------------------------------------------------------------------------------------------- proxies


def test_proxy_jump_and_proxy_command_from_ssh_config(sshd: LocalSSHD, tmp_path: Path) -> None:
    pump = tmp_path / "pump.py"
    pump.write_text(
        "import socket, sys, threading\n"
        "s = socket.create_connection((sys.argv[1], int(sys.argv[2])))\n"
        "def up():\n"
        "    while (b := sys.stdin.buffer.raw.read(65536)):\n"
        "        s.sendall(b)\n"
        "threading.Thread(target=up, daemon=True).start()\n"
        "while (b := s.recv(65536)):\n"
        "    sys.stdout.buffer.write(b); sys.stdout.buffer.flush()\n"
    )
    cfg = tmp_path / "ssh_config"
    cfg.write_text(
        f"Host viajump\n  HostName 127.0.0.1\n  Port {sshd.port}\n  User root\n"
        f"  ProxyJump root@127.0.0.1:{sshd.port}\n"
        f"Host viacmd\n  HostName 127.0.0.1\n  Port {sshd.port}\n  User {SUDO_USER}\n"
        f"  ProxyCommand {sys.executable} {pump} %h %p\n"
    )
    extras = sshd.extras(ssh_config=str(cfg))
    p = build_params("viajump", None, None, None, extras)
    assert (p.hostname, p.port, p.username, len(p.proxy_jump)) == ("127.0.0.1", sshd.port, "root", 1)
    s = connect(p)
    try:
        assert s.run("echo via-jump").stdout == "via-jump\n" and not s.tcp_nodelay
    finally:
        s.close()
    s = connect(build_params("viacmd", None, None, None, extras))
    try:
        assert s.user == SUDO_USER and s.run("id -u").stdout.strip() == "0"
    finally:
        s.close()


# --------------------------------------------------------------------------------------------- nornir


def test_threaded_runner_three_hosts_reuse_one_connection_each(sshd: LocalSSHD) -> None:
    from nornir.core import Nornir
    from nornir.core.configuration import Config
    from nornir.core.inventory import ConnectionOptions, Defaults, Groups, Host, Hosts, Inventory
    from nornir.core.plugins.connections import ConnectionPluginRegister
    from nornir.core.task import Result, Task
    from nornir.plugins.runners import ThreadedRunner

    if CONNECTION_NAME not in ConnectionPluginRegister.available:
        ConnectionPluginRegister.register(CONNECTION_NAME, HiveSSH)
    opts = {CONNECTION_NAME: ConnectionOptions(extras=sshd.extras())}
    users = {"h1": "root", "h2": SUDO_USER, "h3": "root"}
    hosts = Hosts({
        n: Host(n, hostname="127.0.0.1", port=sshd.port, username=u, connection_options=opts)
        for n, u in users.items()
    })
    nr = Nornir(inventory=Inventory(hosts=hosts, groups=Groups(), defaults=Defaults()),
                runner=ThreadedRunner(num_workers=3), config=Config())

    def task(task: Task) -> Result:
        ids, outs = set(), []
        for i in range(3):
            s = session_for(task.host, task.nornir.config)
            ids.add(id(s))
            outs.append(s.run(f"id -u; echo {i}").stdout.split())
        return Result(host=task.host, result=(ids, outs, threading.get_ident()))

    with nr:
        first = nr.run(task=task)
        second = nr.run(task=task)
        assert not first.failed and not second.failed
        for name in users:
            ids1, outs, _ = first[name][0].result
            ids2, _, _ = second[name][0].result
            assert len(ids1) == 1 and ids1 == ids2  # one connection per host, reused across runs/threads
            assert outs == [["0", "0"], ["0", "1"], ["0", "2"]]
        all_ids = {next(iter(first[n][0].result[0])) for n in users}
        assert len(all_ids) == 3
        # a dead cached session is reopened once
        dead = nr.inventory.hosts["h1"].get_connection(CONNECTION_NAME, nr.config)
        dead.close()
        fresh = session_for(nr.inventory.hosts["h1"], nr.config)
        assert fresh is not dead and fresh.run("true").ok


def test_fresh_login(root_session: SSHSession) -> None:
    assert root_session.fresh_login() < 2


# --------------------------------------------------------------------------------------------- dead peers


def _descendants(pid: int) -> list[int]:
    """Every process under pid (the test sshd's per-connection processes), from /proc."""
    parent: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                parent[int(d.name)] = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        kids = [p for p, pp in parent.items() if pp in frontier]
        found.extend(kids)
        frontier = kids
    return found


def _signal_all(pids: list[int], sig: int) -> None:
    for p in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, sig)


def test_frozen_peer_is_connection_lost_within_the_keepalive_budget(sshd: LocalSSHD) -> None:
    """docker pause, here: SIGSTOP on the connection's sshd processes (the kernel still ACKs, nothing answers)."""
    s = sshd.connect("root", keepalive=0.5, keepalive_count_max=2)
    assert s.run("true").ok
    frozen = _descendants(sshd.proc.pid)
    assert frozen
    timer = threading.Timer(0.5, _signal_all, (frozen, signal.SIGSTOP))
    t0 = time.monotonic()
    timer.start()
    try:
        with pytest.raises(ConnectionLost) as ei:
            s.run("sleep 30", timeout=60)
        took = time.monotonic() - t0
    finally:
        timer.join()
        _signal_all(frozen, signal.SIGCONT)
    assert "keepalives unanswered" in str(ei.value) and "sleep 30" in str(ei.value)
    assert took < 20, took  # the 30 s command, or the 60 s timeout, would be far later
    assert not s.is_alive()


def test_a_killed_command_is_no_exit_status_and_a_killed_connection_is_lost(sshd: LocalSSHD) -> None:
    """The old code reported both as `exit -1`; a signal is named, a vanished host is unreachable."""
    s = sshd.connect("root")
    with pytest.raises(NoExitStatus) as ei:
        s.run("kill -KILL $$")
    assert ei.value.signal == "KILL" and "killed by signal KILL" in str(ei.value)
    assert not isinstance(ei.value, ConnectionLost) and s.run("echo alive").stdout == "alive\n"
    before = set(_descendants(sshd.proc.pid))
    victim = sshd.connect("root")
    mine = [p for p in _descendants(sshd.proc.pid) if p not in before]
    timer = threading.Timer(0.5, _signal_all, (mine, signal.SIGKILL))  # as `docker stop` ends sshd
    timer.start()
    try:
        with pytest.raises(ConnectionLost) as lost:
            victim.run("sleep 30", timeout=60)
    finally:
        timer.join()
    assert "sleep 30" in str(lost.value)


def test_a_secret_script_is_never_named_in_logs_or_errors(
        root_session: SSHSession, caplog: pytest.LogCaptureFixture) -> None:
    """A secret Command's text is its own secret: the debug log and a timeout say `(secret command)`."""
    caplog.set_level(logging.DEBUG)
    token = f"tok{uuid.uuid4().hex}"
    assert root_session.run(f"printf %s {token} >/dev/null", secret=True).ok
    with pytest.raises(CommandTimeout) as ei:
        root_session.run(f": {token}; sleep 5", timeout=0.5, secret=True)
    assert token not in str(ei.value) and "(secret command)" in str(ei.value)
    assert token not in caplog.text and "(secret command)" in caplog.text


def test_the_users_key_is_tried_before_the_stage_key(sshd: LocalSSHD, tmp_path: Path) -> None:
    """ansible_ssh_private_key_file first, then the stage key: either one that sshd accepts logs in."""
    keygen(tmp_path / "mine")
    keygen(tmp_path / "wrong")
    ok = sshd.connect("root", identity_files=[str(sshd.key)], key_file=str(tmp_path / "wrong"))
    assert ok.run("true").ok
    ok = sshd.connect("root", identity_files=[str(tmp_path / "wrong")])  # the stage key (sshd.key) after it
    assert ok.run("true").ok
    with pytest.raises(AuthenticationFailed) as ei:
        sshd.connect("root", identity_files=[str(tmp_path / "mine")], key_file=str(tmp_path / "wrong"))
    msg = str(ei.value)
    assert msg.index(str(tmp_path / "mine")) < msg.index(str(tmp_path / "wrong")), msg


# --------------------------------------------------------------------------------------------- local forwards


def test_local_forward_pipes_a_loopback_port_to_the_hosts_address_and_ends_with_the_session(
        sshd: LocalSSHD) -> None:
    import socket

    from hive_nornir.transport.forward import local_forward

    echo = socket.create_server(("127.0.0.1", 0))  # the "engine": an echo server as the host sees it
    port = int(echo.getsockname()[1])

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = echo.accept()
                with conn:
                    while data := conn.recv(65536):
                        conn.sendall(b"echo:" + data)

    threading.Thread(target=serve, daemon=True).start()
    session = sshd.connect("root")
    forward = local_forward(session, "127.0.0.1", port, "test")
    assert local_forward(session, "127.0.0.1", port) is forward  # one per session and address
    for n in range(3):  # every connection its own channel
        with socket.create_connection(("127.0.0.1", forward.port), timeout=10) as c:
            c.sendall(b"ping%d" % n)
            c.shutdown(socket.SHUT_WR)
            got = b""
            while chunk := c.recv(65536):
                got += chunk
            assert got == b"echo:ping%d" % n
    assert forward.connections == 3
    session.close()
    for _ in range(100):  # bounded: the accept loop polls twice a second
        if forward.closed:
            break
        time.sleep(0.1)
    assert forward.closed and not forward.active
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", forward.port), timeout=2).close()
    echo.close()
