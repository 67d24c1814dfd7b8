"""sshd: hardening in a drop-in, kept only when sshd uses it and a fresh login still works (else rolled back)."""

from __future__ import annotations

import shlex
import time

from hive_nornir.engine.errors import StepFailed
from hive_nornir.engine.protocols import TaskContext
from hive_nornir.primitives.config_transaction import CANDIDATE, ConfigFile, ConfigTransaction, Script, run_transaction
from hive_nornir.tasks.ssh.reach import sshd_port
from hive_nornir.tasks.ssh.safety import (
    DROPIN,
    MAIN_CONFIG,
    SSHD,
    HardeningPlan,
    HostState,
    Login,
    Setting,
    access_problems,
    current_order,
    lockout_reasons,
    match_spec,
    mismatches,
    own_login,
    parse_effective,
    parse_probe,
    plan_changes,
    planned_order,
    predicted_overrides,
    probe_script,
    reload_script,
    service_name,
    setters_command,
    wanted_settings,
)
from hive_nornir.transport.errors import ConnectionRefused, ConnectTimeout, TransportError
from hive_nornir.transport.forward import forward_spec, renew

DEADMAN_SECONDS = 120  # the host restores itself this long after a reload unless the fresh login was proven
# SIGHUP makes sshd close its listeners and re-exec itself; a login in that window is reset. Only "not
# listening" is retried: a refused key or user fails at once.
RELOGIN_DELAYS_S = (0.2, 0.5, 1.0, 2.0)


def settings_for(ctx: TaskContext) -> list[Setting]:
    """The site's wishes for this host: users managed -> no root logins; hive_sshd_port -> Port."""
    try:
        port = sshd_port(ctx.var("hive_sshd_port"))
    except ValueError as e:
        raise StepFailed(str(e)) from e
    try:
        proxy = forward_spec(ctx.var) is not None
    except ValueError as e:
        raise StepFailed(str(e)) from e
    return wanted_settings(ctx.facts, bool(ctx.var("hive_users")), port, gateway_ports=proxy)


def read_state(ctx: TaskContext, settings: list[Setting]) -> HostState:
    """One read-only exec: files, our connection as sshd sees it, and sshd -T for our own login."""
    return parse_probe(ctx.run(probe_script(settings, ctx.session.user)).stdout)


def password_only(ctx: TaskContext) -> bool:
    """Whether hive_nornir's login relies on a password (no key configured)."""
    params = ctx.session.params
    return params.password is not None and not params.key_files


def sshd(ctx: TaskContext) -> None:
    """Refuse what would lock us out; otherwise write, validate, check sshd -T, reload, prove a fresh login."""
    settings = settings_for(ctx)
    state = read_state(ctx, settings)
    reasons = lockout_reasons(settings, ctx.session.user, state.conn, password_only(ctx))
    if reasons:
        raise StepFailed("sshd hardening refused, nothing changed: " + "; ".join(reasons))
    try:
        plan = plan_changes(state, settings)
    except ValueError as e:
        raise StepFailed(str(e)) from e
    service = service_name(ctx.facts)
    login = own_login(ctx.session.user, state, password_only(ctx))
    if not plan.changes:
        verify_in_place(ctx, state, settings, login)
        return
    pending = pending_lockouts(state, settings, login)
    if pending:
        raise StepFailed("sshd hardening refused, nothing changed, sshd not reloaded: a reload would load files that "
                         f"do not admit our own login ({login.describe()}): " + "; ".join(pending))
    if ctx.check:
        predict(ctx, state, plan, settings, service)
        return
    apply(ctx, state, plan, settings, service)
    renew(ctx.session)  # a proxy forward bound under the old GatewayPorts: listen again on a new connection


def pending_lockouts(state: HostState, settings: list[Setting], login: Login) -> list[str]:
    """What in the files sshd reads NOW (anyone's pending edit) would refuse our login once sshd reloads them.

    Listening is left to the check after install when our own drop-in adds `Port` on the port we arrive at."""
    if not state.t_ok:
        return []  # sshd -T fails: reported as such (check mode) or by `sshd -t` after install (rolled back)
    ours = any(s.key == "port" and s.value == str(login.server_port) for s in settings)
    return access_problems(state.effective, login, state.socket, current_order(state),
                           skip=frozenset({"port"}) if ours else frozenset())


def predict(ctx: TaskContext, state: HostState, plan: HardeningPlan, settings: list[Setting], service: str) -> None:
    """Check mode: report the changes, or the failure a real run would hit (broken config, earlier override)."""
    if not state.t_ok:
        raise StepFailed(f"sshd -T fails with the current config, so a real run would roll back: {state.t_error}")
    overrides = predicted_overrides(state, settings)
    if overrides:
        raise StepFailed("sshd would not use the drop-in (it uses the FIRST value it reads), so a real run "
                         "would roll it back: " + "; ".join(overrides))
    for ident, summary, diff in plan.changes:
        ctx.changed(ident, summary, diff)
    ctx.changed(f"service[{service}]", f"reload {service} (not restart); keep only if a fresh login works")


def setters_text(ctx: TaskContext, settings: list[Setting]) -> str:
    """`file:line:Keyword value` of every line that sets one of our keywords, on one line."""
    found = ctx.run(setters_command(settings), check=False).stdout.splitlines()
    return "; ".join(line.strip() for line in found if line.strip())


def verify_in_place(ctx: TaskContext, state: HostState, settings: list[Setting], login: Login) -> None:
    """Files already right: sshd must still use them (a later override or broken sibling is reported), and
    what it would load at its next reload must still admit our login."""
    if not state.t_ok:
        raise StepFailed(f"sshd -T fails with the current config: {state.t_error}")
    locked = access_problems(state.effective, login, state.socket, current_order(state))
    if locked:
        raise StepFailed(f"the files sshd reads would not admit our own login ({login.describe()}) at its next "
                         "reload (nothing changed, sshd not reloaded): " + "; ".join(locked))
    wrong = mismatches(settings, state.effective)
    if wrong:
        setters = setters_text(ctx, settings)
        raise StepFailed(f"{DROPIN} is in place but sshd does not use it: {'; '.join(wrong)}. "
                         f"sshd uses the FIRST value; lines that set these keywords: {setters or '(none found)'}")


def fresh_login(ctx: TaskContext) -> float:
    """A NEW connection must log in; sshd's re-exec window after a reload is waited out, nothing else."""
    start = time.monotonic()
    for delay in (*RELOGIN_DELAYS_S, None):
        try:
            ctx.session.fresh_login()
            return time.monotonic() - start
        except (ConnectionRefused, ConnectTimeout):
            if delay is None:
                raise
            time.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def transaction(ctx: TaskContext, state: HostState, plan: HardeningPlan, settings: list[Setting], service: str,
                proven: list[float]) -> ConfigTransaction:
    """sshd as the config transaction's first user: candidates vetted by `sshd -t -f`, the whole config by
    `sshd -t`, `sshd -T -C` for our own login, reload (waiting for sshd's re-exec), a fresh login."""
    login = own_login(ctx.session.user, state, password_only(ctx))
    port = state.conn.server_port if state.conn else 22  # where sshd receives our logins
    vet = (SSHD, "-t", "-f", CANDIDATE)
    files = []
    if plan.dropin_new is not None:
        files.append(ConfigFile(DROPIN, plan.dropin_new.encode(), existed=state.dropin is not None, validate=vet,
                                label="the drop-in on its own", make_dir=not state.dir_exists))
    if plan.main_new is not None:
        mode, owner, group = state.main_stat
        files.append(ConfigFile(MAIN_CONFIG, plan.main_new.encode("utf-8", "surrogateescape"), existed=True,
                                mode=mode, owner=owner, group=group, validate=vet,
                                label=f"{MAIN_CONFIG} with the Include line"))

    def effective() -> str:
        """`sshd -T -C` for our own login must show every wanted value (first value wins, Match applies) and
        admit that login (port, listen address, Allow/Deny users and groups, auth methods)."""
        r = ctx.run(shlex.join([SSHD, "-T", "-C", match_spec(ctx.session.user, state.conn)]), check=False)
        if not r.ok:
            return f"sshd -T fails: {r.stderr.strip()}"
        values = parse_effective(r.stdout)
        wrong = mismatches(settings, values)
        if wrong:
            setters = setters_text(ctx, settings)
            return (f"sshd would not use the drop-in: {'; '.join(wrong)}. sshd uses the FIRST value it reads; "
                    f"lines that set these keywords: {setters or '(none found)'}")
        locked = access_problems(values, login, state.socket, planned_order(state, plan))
        if locked:
            return (f"the whole config with the drop-in would not admit our own login ({login.describe()}), so sshd "
                    f"was not reloaded: {'; '.join(locked)}")
        return ""

    def prove() -> str:
        """A NEW connection logs in (the old session stays open to roll back through)."""
        try:
            proven.append(fresh_login(ctx))
        except TransportError as e:
            return f"a fresh SSH login failed after the reload ({e})"
        return ""

    return ConfigTransaction(name="sshd", files=tuple(files), validate_whole=(SSHD, "-t"), effective=effective,
                             reload=Script(reload_script(service, port)), prove=prove, prove_name="a fresh login",
                             deadman_seconds=DEADMAN_SECONDS)


def apply(ctx: TaskContext, state: HostState, plan: HardeningPlan, settings: list[Setting], service: str) -> None:
    """Run the transaction; report the files and the reload only once the fresh login proved them."""
    proven: list[float] = []
    run_transaction(ctx, transaction(ctx, state, plan, settings, service, proven))
    seconds = proven[-1] if proven else 0.0
    for ident, summary, diff in plan.changes:
        ctx.changed(ident, summary, diff)
    ctx.changed(f"service[{service}]", f"reloaded {service}; fresh login ok in {seconds:.2f} s")
    ctx.outcome.data["fresh_login_s"] = round(seconds, 3)
