"""The controller's HTTP proxy on real hosts, hive-builder style: an SSH remote forward from each host's
<private ip>:3128 to the proxy as the controller sees it, sshd's GatewayPorts, /etc/environment, pip.conf and the
docker client's proxies.

Site `hprox`, 10.96.0.0/24: one hive and one repository. Stand-in: the "proxy" is a tiny HTTP server on the
controller's own 127.0.0.1 that answers every request itself (no real proxy may reach out from here), so the
packages are installed by a first run without hive_http_proxy; the proxied run then needs no package download.
The forward lives as long as the run's SSH session, so a last step of the runbook looks at the hosts (docker exec)
while it is up.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from hive_nornir.api import Hive
from hive_nornir.engine.context import HostContext
from hive_nornir.engine.outcome import OK
from hive_nornir.engine.runbook import Runbook, Step
from hive_nornir.report.run_report import EXIT_OK
from hive_nornir.runbooks.setup_hosts import RUNBOOK as SETUP_HOSTS

pytestmark = pytest.mark.lab

STEPS = ("ssh-connection", "tls-certificate", "http-proxy", "base", "iptables", "sshd", "docker", "docker-client",
         "docker-client-proxy")
WATCHED = ("/etc/environment /etc/pip.conf /etc/ssh /home/admin/.docker /etc/iptables /var/lib/dpkg/status "
           "/etc/docker /usr/lib/systemd/system/docker.service.d")
FETCH = ("set -a; . /etc/environment; set +a; {extra}python3 -c 'import urllib.request; "
         "print(urllib.request.urlopen(\"http://hprox.test/ping\", timeout=20).read().decode())'")


class Answer(BaseHTTPRequestHandler):
    """Answers any request with the server's token and the request target (a proxy sees the absolute URL)."""

    token = ""
    seen: list[str] = []

    def do_GET(self) -> None:
        self.seen.append(self.path)
        body = f"{self.token} {self.path}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def controller_proxy() -> Iterator[tuple[int, type[Answer]]]:
    """The stand-in proxy on the controller's loopback, on a free port."""
    handler = type("ProxyAnswer", (Answer,), {"token": f"hprox-{uuid.uuid4().hex}", "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()


def runbook(look: Step | None = None) -> Runbook:
    """setup-hosts' own steps for the proxy, in its order, plus an optional look at the hosts while it is up."""
    steps = tuple(s for s in SETUP_HOSTS.steps if s.name in STEPS)
    return Runbook("hprox-test", steps + ((look,) if look else ()))


def fingerprint(lab: Any) -> dict[str, str]:
    """Hashes of the files the steps touch, per host (observed via docker exec)."""
    return {h: lab.docker_exec(h, f"find {WATCHED} -type f 2>/dev/null | sort | xargs -r md5sum")[1]
            for h in lab.hosts}


def test_hosts_reach_the_controllers_proxy_through_the_forward(make_lab, controller_proxy) -> None:  # type: ignore[no-untyped-def]
    port, answer = controller_proxy
    lab = make_lab("hprox", "10.96.0.0/24", 2, separate=True)
    hive_name, repo_name = lab.hosts
    ips = {h: lab.state["hosts"][h]["private_ip"] for h in lab.hosts}
    hive = Hive(lab.root, stage="private")
    t0 = time.monotonic()
    first = hive.run(runbook())
    print(f"packages and docker without a proxy: {time.monotonic() - t0:.1f} s")
    assert first.exit_code == EXIT_OK, first.text()

    (lab.root / "inventory" / "group_vars").mkdir(exist_ok=True)
    (lab.root / "inventory" / "group_vars" / "all.yml").write_text(f"hive_http_proxy: 127.0.0.1:{port}\n")
    seen: dict[str, dict[str, Any]] = {}

    def look(ctx: HostContext) -> None:
        """While the run's sessions (and their forwards) are up: what the host sees through its proxy settings."""
        me = ctx.name
        other = repo_name if me == hive_name else hive_name
        seen[me] = {
            "own": lab.docker_exec(me, FETCH.format(extra="")),
            "via_other": lab.docker_exec(me, FETCH.format(extra=f"http_proxy=http://{ips[other]}:3128 ")),
            "listen": lab.docker_exec(me, "ss -Hltn 'sport = :3128' | awk '{print $4}'")[1].split(),
        }

    t0 = time.monotonic()
    report = hive.run(runbook(Step("look", look, tags=("look",))))
    print(f"first run with hive_http_proxy: {time.monotonic() - t0:.1f} s")
    assert report.exit_code == EXIT_OK, report.text()
    changed = {(o.step, o.host) for o in report.outcomes if o.changes}
    assert {("http-proxy", h) for h in lab.hosts} <= changed  # GatewayPorts in the sshd drop-in
    for host in lab.hosts:
        rc, out = seen[host]["own"]
        assert rc == 0 and out.strip() == f"{answer.token} http://hprox.test/ping", (host, out)
        rc, out = seen[host]["via_other"]  # the other server's forward, through its http_proxy rule set
        assert rc == 0 and answer.token in out, (host, out)
        assert seen[host]["listen"] == [f"{ips[host]}:3128"], seen[host]  # the private address only
        _, env = lab.docker_exec(host, "grep -E '^(http_proxy|HTTP_PROXY)=' /etc/environment")
        assert env.split() == [f"http_proxy=http://{ips[host]}:3128", f"HTTP_PROXY=http://{ips[host]}:3128"]
        _, effective = lab.docker_exec(host, "sshd -T | grep -i '^gatewayports'")
        assert effective.strip() == "gatewayports clientspecified"
        _, cfg = lab.docker_exec(host, "stat -c '%a %U' ~admin/.docker/config.json; cat ~admin/.docker/config.json")
        mode, config = cfg.split("\n", 1)
        assert mode == "600 admin"
        default = json.loads(config)["proxies"]["default"]
        assert default["httpProxy"] == default["httpsProxy"] == f"http://{ips[host]}:3128"
        assert set(default["noProxy"].split(",")) >= {"localhost", "127.0.0.1", *lab.hosts}
        assert "trusted-host = pypi.org" in lab.docker_exec(host, "cat /etc/pip.conf")[1]
    assert answer.seen.count("http://hprox.test/ping") == 4  # 2 hosts x (own forward, the other's)

    before = fingerprint(lab)
    again = hive.run(runbook())
    assert again.exit_code == EXIT_OK and again.changed == 0, again.changes()
    assert all(o.status == OK for o in again.outcomes)
    assert fingerprint(lab) == before
    assert hive.run(runbook(), check=True).changed == 0
    # the forward ends with the run's session: nothing is left listening on the hosts (sshd's child exits
    # shortly after the connection closes: at most 50 x 0.1 s)
    _, left = lab.docker_exec(hive_name, "for i in $(seq 50); do [ -z \"$(ss -Hltn 'sport = :3128')\" ] && break; "
                                         "sleep 0.1; done; ss -Hltn 'sport = :3128'")
    assert left.strip() == ""
