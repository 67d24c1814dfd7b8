"""Provider `prepared`: servers that already exist; record where they are and check we can reach them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import paramiko

from hive_nornir.inventory import build_inventory
from hive_nornir.inventory.connection import Endpoint, site_endpoint
from hive_nornir.providers.common import (
    Log,
    ProviderError,
    ensure_context_dir,
    ensure_keypair,
    judge_host_key,
    known_host_key,
    known_hosts_name,
    load_pkey,
    nolog,
    plan_hosts,
    probe_ssh,
    read_state,
    site_name,
    stage_cidr,
    update_known_hosts,
    write_state,
)


def site_endpoints(site: Any, stage: str) -> dict[str, Endpoint]:
    """Where each server is by the site's variables, by the inventory's own rule (ansible_port included)."""
    inventory = build_inventory(site, stage, None)
    return {name: site_endpoint(name, dict(host.data)) for name, host in inventory.hosts.items()}


def build(site: Any, stage: str, context_dir: Path, log: Log = nolog, *, adopt: bool = False,
          rekey: Any = ()) -> dict[str, Any]:
    """Write state.json for existing hosts, trust host keys on first contact, report who is reachable.

    A changed host key is refused unless the host is named in `rekey`; `adopt` means nothing here (the hosts are
    never ours to create or remove).
    """
    t0 = time.monotonic()
    context_dir = ensure_context_dir(Path(context_dir))
    sname = site_name(site)
    plans = plan_hosts(site, stage)
    short = {p.short: p.name for p in plans}
    rekeyed = {short.get(str(r), str(r)) for r in rekey or ()}
    unknown = sorted(rekeyed - {p.name for p in plans})
    if unknown:
        raise ProviderError(f"--rekey {', '.join(unknown)}: not a host of this stage")
    changed = ensure_keypair(context_dir, f"hive-{sname}-{stage}", log)
    if changed:
        log(f"install {context_dir / 'id_ed25519.pub'} in authorized_keys of the login user on every host")
    pkey = load_pkey(context_dir)
    kh = context_dir / "known_hosts"
    hosts: dict[str, Any] = {}
    status: dict[str, list[str]] = {}
    kh_set: dict[str, str] = {}
    problems: list[str] = []
    targets = site_endpoints(site, stage)
    for plan in plans:
        where = targets[plan.name]
        address, port, user = where.hostname, where.port, where.username
        pattern = known_hosts_name(address, port)
        hosts[plan.name] = {"address": address, "port": port, "user": user, "private_ip": plan.private_ip}
        if (context_dir / "ssh_config").is_file() or plan.data.get("hive_ssh_config"):
            # a bastion (ProxyJump/ProxyCommand) is only known to ssh_config: probe on hive_ssh's own path
            status[plan.name], problem = _probe_via_transport(plan.name, where, context_dir, plan.data,
                                                              rekey=plan.name in rekeyed)
            problems.extend([problem] if problem else [])
            continue
        try:
            hostkey, auth_err = probe_ssh(address, port, user, pkey, timeout=10.0)
        except (OSError, paramiko.SSHException, EOFError) as e:
            status[plan.name] = ["unreachable"]
            problems.append(f"{plan.name}: ssh {address}:{port} unreachable: {type(e).__name__}: {e}")
            continue
        known = known_host_key(kh, pattern)
        if known is not None and known.split()[0] != hostkey.split()[0]:
            status[plan.name] = []  # another key type was offered; the transport checks the recorded one
        else:
            key, action, refusal = judge_host_key(plan.name, pattern, known, hostkey, kh, rekeyed)
            if refusal:
                status[plan.name] = ["host_key_changed"]
                problems.append(refusal)
                continue
            if action:
                kh_set[pattern] = key
            status[plan.name] = [action] if action else []
        if auth_err:
            status[plan.name].append("auth_failed")
            problems.append(f"{plan.name}: {auth_err}")
    changed |= update_known_hosts(kh, kh_set)
    cidr = stage_cidr(site, stage)
    state = {"provider": "prepared", "stage": stage, "site_name": sname, "ssh_key": "id_ed25519",
             "network": {"name": f"hive-{sname}-{stage}", "cidr": cidr}, "hosts": hosts}
    changed |= write_state(context_dir, state)
    for p in problems:
        log(p)
    log(f"build-infra prepared {sname}/{stage}: {len(hosts)} hosts, {len(problems)} problems, "
        f"{time.monotonic() - t0:.1f} s")
    if problems:
        raise ProviderError("prepared hosts not ready:\n" + "\n".join(problems))
    return {"changed": changed, "hosts": status, "state": state,
            "elapsed_s": round(time.monotonic() - t0, 2)}


def _probe_via_transport(name: str, where: Endpoint, context_dir: Path, data: dict[str, Any],
                         rekey: bool = False) -> tuple[list[str], str]:
    """Connect as the engine will (ssh_config by inventory name, jumps, accept-new known_hosts); status, problem.

    A changed host key is refused; with `rekey` (build-infra --rekey HOST) the old entry is dropped and the key the
    host shows on that same path is recorded."""
    from nornir.core.inventory import ConnectionOptions, Defaults, Host

    from hive_nornir.inventory.connection import connection_extras
    from hive_nornir.transport.errors import AuthenticationFailed, HostKeyChanged, TransportError
    from hive_nornir.transport.known_hosts import KnownHosts
    from hive_nornir.transport.params import build_params
    from hive_nornir.transport.plugin import CONNECTION_NAME, host_extras
    from hive_nornir.transport.session import connect

    extras = connection_extras(context_dir, None)["hive_ssh"]
    host = Host(name, hostname=where.hostname, port=where.port, username=where.username, data=dict(data),
                defaults=Defaults(connection_options={CONNECTION_NAME: ConnectionOptions(extras=extras)}))
    params = build_params(where.hostname, where.username, None, where.port,
                          {**host_extras(host), "connect_retries": 0, "connect_timeout": 10})
    first_contact = not KnownHosts(params.known_hosts).lookup(params.hostname, params.port)
    try:
        try:
            connect(params).close()
        except HostKeyChanged as e:
            if not rekey:
                return ["host_key_changed"], (f"{name}: {e} (or accept the new key with "
                                              f"`build-infra --rekey {name.split('.', 1)[0]}`)")
            update_known_hosts(Path(params.known_hosts), {}, [known_hosts_name(params.hostname, params.port)])
            connect(params).close()
            return ["rekeyed"], ""
    except HostKeyChanged as e:  # rekey could not drop the entry (hashed or shared with other names)
        return ["host_key_changed"], f"{name}: {e}"
    except AuthenticationFailed as e:
        return ["auth_failed"], f"{name}: {e}"
    except TransportError as e:
        return ["unreachable"], f"{name}: ssh unreachable: {e}"
    return (["host_key_recorded"] if first_contact else []), ""


def destroy(site: Any, stage: str, context_dir: Path, log: Log = nolog, *, adopt: bool = False) -> None:
    """Prepared hosts are not ours to remove: only forget them in state.json and known_hosts."""
    context_dir = Path(context_dir)
    state = read_state(context_dir)
    if not state:
        return
    drop = [known_hosts_name(str(h["address"]), int(h["port"])) for h in (state.get("hosts") or {}).values()]
    if (context_dir / "known_hosts").exists():
        update_known_hosts(context_dir / "known_hosts", {}, drop)
    state["hosts"] = {}
    write_state(context_dir, state)
    log(f"destroy prepared {site_name(site)}/{stage}: forgot {len(drop)} hosts (the hosts are untouched)")
