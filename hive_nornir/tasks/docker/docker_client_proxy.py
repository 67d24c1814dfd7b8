"""docker-client-proxy (servers, when the host's environment has HTTP_PROXY): the docker CLI passes the proxy to
builds and containers through `proxies.default` in the admin's ~/.docker/config.json (hive-builder §3.16).

The rest of config.json (registry auths...) is kept; its content never reaches a report (secret diff).
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from hive_nornir.engine.errors import StepFailed
from hive_nornir.engine.protocols import TaskContext
from hive_nornir.primitives.base import q
from hive_nornir.primitives.file import File
from hive_nornir.tasks.docker.docker_client import parse_passwd

ENVIRONMENT = "/etc/environment"
KEYS = {"HTTP_PROXY": "httpProxy", "HTTPS_PROXY": "httpsProxy", "NO_PROXY": "noProxy"}
SECTION = "--hive-section--"


def parse_environment(text: str) -> dict[str, str]:
    """KEY=value lines of /etc/environment (pam_env syntax: optional quotes, comments); the last one wins."""
    env: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        try:
            parts = shlex.split(value)
        except ValueError:
            parts = [value]
        env[key.strip()] = parts[0] if parts else ""
    return env


def wanted_proxies(env: dict[str, str]) -> dict[str, str] | None:
    """`proxies.default` from the environment; None when HTTP_PROXY is not set (nothing to do)."""
    if not env.get("HTTP_PROXY"):
        return None
    return {name: env[key] for key, name in KEYS.items() if env.get(key)}


def merged_config(current: str | None, proxies: dict[str, str]) -> str:
    """config.json with proxies.default set; the current text is kept when it already says so."""
    data: dict[str, Any] = {}
    if current and current.strip():
        try:
            loaded = json.loads(current)
        except ValueError as e:
            raise StepFailed(f"~/.docker/config.json is not valid JSON ({e}); not overwriting it") from e
        if not isinstance(loaded, dict):
            raise StepFailed("~/.docker/config.json is not a JSON object; not overwriting it")
        data = loaded
    section = data.get("proxies")
    if not isinstance(section, dict):
        section = {}
    if current is not None and section.get("default") == proxies:
        return current
    data["proxies"] = {**section, "default": proxies}
    return json.dumps(data, indent="\t") + "\n"


def read_script(admin: str) -> str:
    """One read: the admin's passwd entry and group, the environment file, the current config.json (if any)."""
    return (f"getent passwd {q(admin)}; id -gn {q(admin)}; echo; echo {SECTION}; cat {ENVIRONMENT} 2>/dev/null; "
            f"echo; echo {SECTION}; h=$(getent passwd {q(admin)} | cut -d: -f6); "
            f"if [ -f \"$h/.docker/config.json\" ]; then echo present; cat \"$h/.docker/config.json\"; fi")


def docker_client_proxy(ctx: TaskContext) -> None:
    """Merge proxies.default into ~/.docker/config.json (0600, the admin's) when HTTP_PROXY is in the environment."""
    admin = str(ctx.var("hive_admin") or ctx.host.username or "admin")
    out = ctx.run(read_script(admin), check=False).stdout
    account_text, env_text, config_text = [*out.split(f"\n{SECTION}\n"), "", ""][:3]
    proxies = wanted_proxies(parse_environment(env_text))
    if proxies is None:
        return
    lines = account_text.strip().splitlines()
    if len(lines) < 2:
        raise StepFailed(f"admin user {admin!r} does not exist on {ctx.name}")
    account, group = parse_passwd(lines[0]), lines[1].strip()
    present, _, current = config_text.partition("\n")
    content = merged_config(current if present == "present" else None, proxies)
    path = f"{account.home.rstrip('/')}/.docker/config.json"
    ctx.ensure([File(path=path, content=content, mode="0600", owner=account.name, group=group, secret=True)])
