"""HTTP proxy, hive-builder style, offline: the forward spec and its pipe, sshd's GatewayPorts, the http-proxy files
per family, docker-client-proxy's config.json merge, and where the steps sit in setup-hosts."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from typing import Any

import paramiko
import pytest
from fake_host import FakeHost, FakeSession, plan_task, stage_host

from hive_nornir.engine.errors import StepFailed
from hive_nornir.facts import canned
from hive_nornir.primitives.file import File
from hive_nornir.primitives.filesystem import Directory
from hive_nornir.runbooks.setup_hosts import RUNBOOK
from hive_nornir.tasks.docker import docker_client_proxy as dcp
from hive_nornir.tasks.net import http_proxy as hp
from hive_nornir.tasks.ssh.safety import dropin_text, wanted_settings
from hive_nornir.transport import forward as fw

DEBIAN = canned("debian")
ALMA = canned("redhat")


# -- the forward ----------------------------------------------------------------------------------------------------

def getter(data: dict[str, Any]) -> Callable[[str, Any], Any]:
    """Host data as forward_spec reads it."""
    def get(key: str, default: Any = None) -> Any:
        return data.get(key, default)
    return get


def spec_of(**data: Any) -> fw.ForwardSpec | None:
    return fw.forward_spec(getter(data))


def test_host_port_proxy_is_forwarded_to_the_private_address() -> None:
    assert spec_of(hive_http_proxy="localhost:3128", hive_private_ip="10.1.0.4") == fw.ForwardSpec(
        "10.1.0.4", 3128, "localhost", 3128)
    assert spec_of(hive_http_proxy="[::1]:8080", hive_http_proxy_port=3129, hive_private_ip="10.1.0.4") == \
        fw.ForwardSpec("10.1.0.4", 3129, "::1", 8080)
    assert spec_of(hive_http_proxy="proxy", hive_private_ip="10.1.0.4") == fw.ForwardSpec(
        "10.1.0.4", 3128, "proxy", 3128)


def test_no_proxy_or_a_full_url_means_no_forward() -> None:
    assert spec_of() is None
    assert spec_of(hive_http_proxy="http://proxy.example:8080", hive_private_ip="10.1.0.4") is None


def test_a_bad_proxy_value_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="host:port"):
        spec_of(hive_http_proxy="localhost:0")


class DeniedThenOk:
    """A transport whose sshd refuses the forward `denials` times (the old listener still holds the port)."""

    def __init__(self, denials: int) -> None:
        self.denials = denials
        self.calls: list[tuple[str, int]] = []

    def request_port_forward(self, address: str, port: int, handler: Any = None) -> int:
        self.calls.append((address, port))
        if len(self.calls) <= self.denials:
            raise paramiko.SSHException("TCP forwarding request denied")
        return port

    def is_active(self) -> bool:
        return True


def test_a_denied_forward_is_retried_then_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fw, "REQUEST_DELAYS_S", (0, 0, 0))
    spec = fw.ForwardSpec("10.1.0.4", 3128, "127.0.0.1", 3128)
    ok = fw.ProxyForward(DeniedThenOk(2), spec, "h")  # type: ignore[arg-type]
    assert ok.open() and ok.error == "" and ok.transport.calls == [("10.1.0.4", 3128)] * 3  # type: ignore[attr-defined]
    bad = fw.ProxyForward(DeniedThenOk(9), spec, "h")  # type: ignore[arg-type]
    assert not bad.open()
    assert "sshd refused to listen on 10.1.0.4:3128" in bad.error and len(bad.transport.calls) == 4  # type: ignore[attr-defined]


def test_attach_opens_one_forward_per_session_and_renew_drops_the_session() -> None:
    data = {"hive_http_proxy": "localhost:3128", "hive_private_ip": "10.1.0.4"}
    session, transport = FakeSession(), DeniedThenOk(0)
    first = fw.attach(getter(data), "h", session, transport)  # type: ignore[arg-type]
    again = fw.attach(getter(data), "h", session, transport)  # type: ignore[arg-type]
    assert first is again and first is not None and transport.calls == [("10.1.0.4", 3128)]
    assert fw.forward_of(session) is first
    assert fw.renew(session) and session.closed
    plain = FakeSession()
    assert fw.attach(getter({}), "h", plain, transport) is None  # type: ignore[arg-type]
    assert not fw.renew(plain) and not plain.closed


def test_session_for_hook_leaves_sessions_of_hosts_without_a_proxy_alone() -> None:
    host = stage_host("h")
    session = FakeSession()  # no transport at all: the hook must not look
    assert fw.attach_for_host(host, session) is session  # type: ignore[arg-type]
    assert fw.forward_of(session) is None


class SocketChannel:
    """A paramiko-channel-shaped end over a socket (fileno, recv, sendall, shutdown_write, closed)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.closed = sock, False

    def fileno(self) -> int:
        return self.sock.fileno()

    def recv(self, n: int) -> bytes:
        return self.sock.recv(n)

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)

    def shutdown_write(self) -> None:
        self.sock.shutdown(socket.SHUT_WR)


def test_pipe_copies_both_ways_and_passes_each_eof_on() -> None:
    ssh_side, chan_end = socket.socketpair()
    proxy_side, sock_end = socket.socketpair()
    worker = threading.Thread(target=fw.pipe, args=(SocketChannel(chan_end), sock_end, 0.2))
    worker.start()
    ssh_side.sendall(b"GET http://x/ HTTP/1.0\r\n\r\n")
    ssh_side.shutdown(socket.SHUT_WR)  # the client is done sending: the proxy must see EOF too
    got = b""
    while chunk := proxy_side.recv(100):
        got += chunk
    assert got == b"GET http://x/ HTTP/1.0\r\n\r\n"
    proxy_side.sendall(b"HTTP/1.0 200 OK\r\n\r\nbody")
    proxy_side.close()
    answer = b""
    while chunk := ssh_side.recv(100):
        answer += chunk
    assert answer == b"HTTP/1.0 200 OK\r\n\r\nbody"
    worker.join(5)
    assert not worker.is_alive()


# -- sshd: GatewayPorts -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("facts", [DEBIAN, ALMA])
def test_a_forwarded_proxy_adds_gateway_ports_to_the_sshd_dropin(facts: Any) -> None:
    plain = wanted_settings(facts, False, None)
    proxied = wanted_settings(facts, False, None, gateway_ports=True)
    assert [f"{s.keyword} {s.value}" for s in proxied] == [
        *(f"{s.keyword} {s.value}" for s in plain), "GatewayPorts clientspecified"]
    assert proxied[-1].check  # sshd -T must report it before the drop-in is kept
    assert dropin_text(proxied).endswith("GatewayPorts clientspecified\n")


def test_sshd_step_asks_for_gateway_ports_only_for_a_forwarded_proxy() -> None:
    from hive_nornir.tasks.ssh.sshd import settings_for

    def ctx(**data: Any) -> FakeHost:
        return FakeHost(facts=DEBIAN, host_vars=data)

    assert any(s.keyword == "GatewayPorts" for s in settings_for(ctx(hive_http_proxy="localhost:3128",
                                                                        hive_private_ip="10.1.0.4")))
    assert not any(s.keyword == "GatewayPorts" for s in settings_for(ctx(hive_http_proxy="http://p:8080")))
    assert not any(s.keyword == "GatewayPorts" for s in settings_for(ctx()))
    with pytest.raises(StepFailed, match="host:port"):
        settings_for(ctx(hive_http_proxy="p:99999"))


# -- http-proxy files and the listener check ----------------------------------------------------------------------

def test_debian_gets_pip_conf_only() -> None:
    plan = plan_task(hp.http_proxy, DEBIAN, host_vars={"hive_http_proxy": "http://proxy.example:8080"})
    assert plan.files == {"/etc/pip.conf": (
        "# managed by hive_nornir (http-proxy): pip through the proxy trusts the package index hosts\n"
        "[global]\ntrusted-host = pypi.org files.pythonhosted.org pypi.python.org\n")}
    assert plan.notified == []


def test_el_also_gets_the_dnf_makecache_override() -> None:
    pip_conf, directory, override = hp.proxy_file_primitives(ALMA)
    assert isinstance(pip_conf, File) and pip_conf.path == "/etc/pip.conf"
    assert isinstance(directory, Directory)
    assert (directory.path, directory.mode) == ("/etc/systemd/system/dnf-makecache.service.d", "0755")
    assert isinstance(override, File)
    assert (override.path, override.content) == ("/etc/systemd/system/dnf-makecache.service.d/override.conf",
                                                 "[Service]\nEnvironmentFile=-/etc/environment\n")
    assert list(override.notify) == ["daemon-reload"]


def test_a_forwarded_proxy_runs_the_sshd_sequence_then_checks_the_listener(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr(hp, "sshd", lambda ctx: calls.append("sshd"))
    monkeypatch.setattr(hp, "verify_forward", lambda ctx, spec: calls.append(f"verify {spec.bind_addr}"))
    plan_task(hp.http_proxy, DEBIAN, host_vars={"hive_http_proxy": "localhost:3128", "hive_private_ip": "10.1.0.4"})
    assert calls == ["sshd", "verify 10.1.0.4"]


def test_listener_check_wants_the_private_address_not_loopback() -> None:
    spec = fw.ForwardSpec("10.1.0.4", 3128, "localhost", 3128)
    assert hp.listening_where("10.1.0.4:3128\n", spec) == ""
    assert hp.listening_where("0.0.0.0:3128\n[::]:3128\n", spec) == ""
    assert "loopback only" in hp.listening_where("127.0.0.1:3128\n[::1]:3128\n", spec)
    assert "nothing listens" in hp.listening_where("", spec)
    assert "not on 10.1.0.4" in hp.listening_where("10.9.9.9:3128\n", spec)


# -- docker-client-proxy ----------------------------------------------------------------------------------------------

ENV = ('PATH="/usr/bin"\nhttp_proxy=http://10.1.0.4:3128\nHTTP_PROXY=http://10.1.0.4:3128\n'
       'HTTPS_PROXY=http://10.1.0.4:3128\nNO_PROXY=localhost,127.0.0.1,p-hive0.pdns\n')
PROXIES = {"httpProxy": "http://10.1.0.4:3128", "httpsProxy": "http://10.1.0.4:3128",
           "noProxy": "localhost,127.0.0.1,p-hive0.pdns"}


def host_output(env: str, config: str | None) -> str:
    """What read_script prints on a host: passwd + group, the environment file, then config.json if present."""
    tail = "" if config is None else f"present\n{config}"
    return f"admin:x:1000:1000::/home/admin:/bin/bash\nadmin\n\n--hive-section--\n{env}\n\n--hive-section--\n{tail}"


@pytest.mark.parametrize("facts", [DEBIAN, ALMA])
def test_proxies_are_merged_into_config_json_keeping_the_rest(facts: Any) -> None:
    current = '{"auths": {"p-hive1.pdns:5000": {"auth": "aGl2ZTpzZWNyZXQ="}}}'
    plan = plan_task(dcp.docker_client_proxy, facts, host_vars={"hive_admin": "admin"},
                     run=lambda _c: host_output(ENV, current), files={"/home/admin/.docker/config.json": current})
    data = json.loads(plan.files["/home/admin/.docker/config.json"])
    assert data == {"auths": {"p-hive1.pdns:5000": {"auth": "aGl2ZTpzZWNyZXQ="}}, "proxies": {"default": PROXIES}}
    (_ident, file_plan), = plan.plans
    assert "aGl2" not in file_plan.diff  # registry credentials never reach a report
    upload = file_plan.uploads[0]
    assert (upload.mode, upload.owner, upload.group) == ("0600", "admin", "admin")


def test_a_missing_config_json_is_created_and_an_agreeing_one_is_left_as_is() -> None:
    plan = plan_task(dcp.docker_client_proxy, DEBIAN, host_vars={"hive_admin": "admin"},
                     run=lambda _c: host_output(ENV, None))
    assert json.loads(plan.files["/home/admin/.docker/config.json"]) == {"proxies": {"default": PROXIES}}
    same = '{"proxies":{"default":' + json.dumps(PROXIES) + '}}'
    assert dcp.merged_config(same, PROXIES) == same  # no reformatting: a second run changes nothing


def test_without_http_proxy_in_the_environment_nothing_happens() -> None:
    plan = plan_task(dcp.docker_client_proxy, DEBIAN, host_vars={"hive_admin": "admin"},
                     run=lambda _c: host_output('PATH="/usr/bin"', None))
    assert plan.plans == [] and len(plan.ran) == 1


def test_a_broken_config_json_is_not_overwritten() -> None:
    with pytest.raises(StepFailed, match="not valid JSON"):
        dcp.merged_config("{auths", PROXIES)


def test_environment_file_parsing_follows_pam_env() -> None:
    assert dcp.parse_environment('# c\nA=1\nB="two words"\nexport C=3\nA=4\n') == {"A": "4", "B": "two words",
                                                                                     "C": "3"}


# -- setup-hosts wiring -----------------------------------------------------------------------------------------------

def test_http_proxy_runs_before_base_and_docker_client_proxy_after_docker_client() -> None:
    names = [s.name for s in RUNBOOK.steps]
    assert names.index("http-proxy") == names.index("base") - 1
    assert names.index("docker-client-proxy") == names.index("docker-client") + 1
    step = RUNBOOK.steps[names.index("http-proxy")]
    assert step.tags == ("http-proxy", "base", "setup-hosts") and step.when is not None
    assert step.when({"hive_http_proxy": "localhost:3128"}) and not step.when({})  # type: ignore[arg-type]
