"""Zabbix JSON-RPC registration, shipped to and run ON the repository: a JSON request on stdin, JSON out.

Standard library only (it runs under the host's python3). The request carries the stage Admin password, so it
only ever travels on stdin; nothing here prints a password. With "check": true it reads and predicts, never writes.
Request keys: url, user, password (None: no stage secret yet), default_password, groups, hosts
[{name, ip, port, groups}], template, delete, check, wait_seconds. Result: {"changes": [...]} or {"error": "..."}.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
import urllib.error
import urllib.request
from typing import Any

AGENT = 1  # interface type: Zabbix agent


class ApiError(Exception):
    """The API answered with an error (its message names no secret)."""


class Unreachable(Exception):
    """Nothing answers at the frontend URL (yet)."""


class Api:
    """Minimal JSON-RPC 2.0 client: one POST per call, the session token in `auth` (Zabbix <= 6.2 style)."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url, self.timeout, self.auth, self.calls = url, timeout, "", 0
        self.writes: list[str] = []

    def call(self, method: str, params: Any, auth: bool = True) -> Any:
        """POST one request; raise ApiError on an error answer, Unreachable when nothing listens."""
        self.calls += 1
        body: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params, "id": self.calls}
        if auth and self.auth:
            body["auth"] = self.auth
        req = urllib.request.Request(self.url, data=json.dumps(body).encode(),  # noqa: S310 - our own URL
                                     headers={"Content-Type": "application/json-rpc"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as reply:  # noqa: S310
                answer = json.loads(reply.read().decode() or "{}")
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError) as e:
            raise Unreachable(f"{method}: {e}") from e
        if "error" in answer:
            err = answer["error"]
            raise ApiError(f"{method}: {err.get('message', '')} {err.get('data', '')}".strip())
        if method not in ("apiinfo.version", "user.login", "user.logout") and not method.endswith(".get"):
            self.writes.append(method)
        return answer.get("result")


def wait_version(api: Api, seconds: float) -> tuple[int, ...]:
    """apiinfo.version, retried while the frontend starts (bounded by `seconds`)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return tuple(int(x) for x in str(api.call("apiinfo.version", {}, auth=False)).split(".")[:2])
        except Unreachable:
            if time.monotonic() >= deadline:
                raise
            time.sleep(1)


def login(api: Api, version: tuple[int, ...], user: str, password: str | None, default: str) -> bool:
    """Log in with the stage password, else the factory default; True when the default still works."""
    key = "username" if version >= (5, 4) else "user"
    if password is not None:
        try:
            api.auth = api.call("user.login", {key: user, "password": password}, auth=False)
            return False
        except ApiError:
            pass
    try:
        api.auth = api.call("user.login", {key: user, "password": default}, auth=False)
    except ApiError as e:
        raise ApiError(f"cannot log in as {user}: neither the stage password nor the default works") from e
    return True


def replace_default_password(api: Api, version: tuple[int, ...], user: str, password: str, default: str) -> None:
    """user.update of the logged-in Admin (6.4+ also wants the current password), then a fresh login."""
    field = "username" if version >= (5, 4) else "alias"
    found = api.call("user.get", {"output": ["userid"], "filter": {field: user}})
    if not found:
        raise ApiError(f"no user {user}")
    update: dict[str, Any] = {"userid": found[0]["userid"], "passwd": password}
    if version >= (6, 4):  # 6.0 refuses the parameter ("unexpected parameter"), 6.4 requires it for one's own
        update["current_passwd"] = default
    api.call("user.update", update)
    login(api, version, user, password, default)


def ensure_groups(api: Api, names: list[str], check: bool, changes: list[str]) -> dict[str, str]:
    """Host groups by name -> id, created when missing (check mode: placeholder ids)."""
    have = {g["name"]: g["groupid"] for g in api.call("hostgroup.get", {"output": ["groupid", "name"],
                                                                        "filter": {"name": names}})}
    for name in names:
        if name not in have:
            changes.append(f"create host group {name}")
            have[name] = "new" if check else api.call("hostgroup.create", {"name": name})["groupids"][0]
    return have


def template_id(api: Api, name: str) -> str:
    """The stock template every server is linked to."""
    found = api.call("template.get", {"output": ["templateid"], "filter": {"host": [name]}})
    if not found:
        raise ApiError(f"template {name!r} does not exist on this zabbix server")
    return str(found[0]["templateid"])


def agent_interface(ip: str, port: str) -> dict[str, Any]:
    """The main agent interface hive-builder registers: by IP, port 10050."""
    return {"type": AGENT, "main": 1, "useip": 1, "ip": ip, "dns": "", "port": port}


def interface_matches(current: dict[str, Any], ip: str, port: str) -> bool:
    """Same address and port, used by IP."""
    return (str(current.get("ip")), str(current.get("port")), str(current.get("useip"))) == (ip, port, "1")


def ensure_host(api: Api, want: dict[str, Any], have: dict[str, Any] | None, groups: dict[str, str], tmpl: str,
                check: bool, changes: list[str]) -> None:
    """Create the host, or add missing groups/template and fix the agent interface (never removes extras)."""
    name, ip, port = want["name"], want["ip"], str(want.get("port", "10050"))
    group_ids = [groups[g] for g in want["groups"]]
    if have is None:
        changes.append(f"register host {name} ({ip}:{port}) in {', '.join(want['groups'])}")
        if not check:
            api.call("host.create", {"host": name, "groups": [{"groupid": g} for g in group_ids],
                                     "interfaces": [agent_interface(ip, port)], "templates": [{"templateid": tmpl}]})
        return
    hostid = have["hostid"]
    current_groups = [g["groupid"] for g in have.get("groups", [])]
    current_templates = [t["templateid"] for t in have.get("parentTemplates", [])]
    update: dict[str, Any] = {}
    missing = [g for g in group_ids if g not in current_groups]
    if missing:
        update["groups"] = [{"groupid": g} for g in [*current_groups, *missing]]
        changes.append(f"add host {name} to {', '.join(g for g in want['groups'] if groups[g] in missing)}")
    if tmpl not in current_templates:
        update["templates"] = [{"templateid": t} for t in [*current_templates, tmpl]]
        changes.append(f"link host {name} to its template")
    if update and not check:
        api.call("host.update", {"hostid": hostid, **update})
    agents = [i for i in have.get("interfaces", []) if str(i.get("type")) == str(AGENT)]
    main = next((i for i in agents if str(i.get("main")) == "1"), None)
    if main is None:
        changes.append(f"add agent interface {ip}:{port} to host {name}")
        if not check:
            api.call("hostinterface.create", {"hostid": hostid, **agent_interface(ip, port)})
    elif not interface_matches(main, ip, port):
        changes.append(f"move agent interface of host {name} to {ip}:{port}")
        if not check:
            api.call("hostinterface.update", {"interfaceid": main["interfaceid"], "ip": ip, "port": port,
                                              "useip": 1, "dns": ""})


def register(api: Api, req: dict[str, Any]) -> list[str]:
    """The whole registration: login (and password replacement), groups, hosts, deletions, in that order."""
    check = bool(req.get("check"))
    changes: list[str] = []
    version = wait_version(api, 0 if check else float(req.get("wait_seconds", 60)))
    user, password, default = req.get("user", "Admin"), req.get("password"), req.get("default_password", "zabbix")
    if login(api, version, user, password, default):
        changes.append(f"replace the default password of {user} by the stage secret")
        if not check:
            if password is None:
                raise ApiError("no stage password to set")
            replace_default_password(api, version, user, password, default)
    groups = ensure_groups(api, list(req["groups"]), check, changes)
    tmpl = template_id(api, req["template"])
    wanted = {h["name"]: h for h in req["hosts"]}
    names = [*wanted, *req.get("delete", [])]
    found = api.call("host.get", {"output": ["hostid", "host"], "filter": {"host": names},
                                  "selectGroups": ["groupid"], "selectParentTemplates": ["templateid"],
                                  "selectInterfaces": ["interfaceid", "type", "main", "useip", "ip", "dns", "port"]})
    by_name = {h["host"]: h for h in found}
    for name, want in wanted.items():
        ensure_host(api, want, by_name.get(name), groups, tmpl, check, changes)
    gone = [by_name[n]["hostid"] for n in req.get("delete", []) if n in by_name and n not in wanted]
    for name in req.get("delete", []):
        if name in by_name and name not in wanted:
            changes.append(f"delete host {name}")
    if gone and not check:
        api.call("host.delete", gone)
    with contextlib.suppress(ApiError, Unreachable):
        api.call("user.logout", [])
    return changes


def main() -> int:
    """Read the request, register, print the result; exit 1 with {"error"} on failure."""
    req = json.loads(sys.stdin.read())
    api = Api(req["url"])
    try:
        changes = register(api, req)
    except Unreachable as e:
        if req.get("check"):  # check mode before the first install: nothing answers yet
            sys.stdout.write(json.dumps({"changes": ["register every server (the frontend is not up yet)"]}))
            return 0
        sys.stdout.write(json.dumps({"error": f"zabbix frontend unreachable: {e}"}))
        return 1
    except ApiError as e:
        sys.stdout.write(json.dumps({"error": str(e)}))
        return 1
    sys.stdout.write(json.dumps({"changes": changes, "writes": api.writes}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
