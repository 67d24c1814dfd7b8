"""sshd: hardening in a drop-in, kept only when sshd uses it and a fresh login still works (else rolled back)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import NoReturn

from hive_nornir.engine.errors import StepFailed
from hive_nornir.engine.protocols import TaskContext
from hive_nornir.primitives.base import q
from hive_nornir.sshd_safety import (
    DROPIN,
    DROPIN_DIR,
    MAIN_CONFIG,
    SSHD,
    HardeningPlan,
    HostState,
    Setting,
    deadman_command,
    install_script,
    lockout_reasons,
    match_spec,
    mismatches,
    parse_effective,
    parse_probe,
    plan_changes,
    predicted_overrides,
    probe_script,
    reload_script,
    rollback_script,
    service_name,
    setters_command,
    sshd_port,
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
    if not plan.changes:
        verify_in_place(ctx, state, settings)
        return
    if ctx.check:
        predict(ctx, state, plan, settings, service)
        return
    Attempt(ctx, state, plan, settings, service).run()
    renew(ctx.session)  # a proxy forward bound under the old GatewayPorts: listen again on a new connection


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


def verify_in_place(ctx: TaskContext, state: HostState, settings: list[Setting]) -> None:
    """Files already right: sshd must still use them (a later override or broken sibling is reported)."""
    if not state.t_ok:
        raise StepFailed(f"sshd -T fails with the current config: {state.t_error}")
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


@dataclass
class Attempt:
    """One guarded change: every failure after the first write restores the old files (and reloads)."""

    ctx: TaskContext
    state: HostState
    plan: HardeningPlan
    settings: list[Setting]
    service: str

    def __post_init__(self) -> None:
        self.stamp = time.strftime("%Y%m%d%H%M%S")
        self.dir_created = False
        self.deadman: tuple[str, str] | None = None  # (timer unit, script path) once armed
        self.port = self.state.conn.server_port if self.state.conn else 22  # where sshd receives our logins
        self.dropin_mode = "same" if self.plan.dropin_new is None else (
            "new" if self.state.dropin is None else "replaced")

    def run(self) -> None:
        """Validate alone, arm the dead-man, install, validate whole, check -T, reload, fresh login."""
        dropin_cand, main_cand = self.stage_candidates()
        try:
            self.arm_deadman()
        except BaseException:
            self.disarm_deadman()
            self.discard([c for c in (dropin_cand, main_cand) if c])
            raise
        try:
            seconds = self.install_and_prove(dropin_cand, main_cand)
        except StepFailed:
            raise
        except Exception as e:  # noqa: BLE001 - a bug or lost connection: undo in-band if we can, else the dead-man
            self.fail(f"unexpected error while changing sshd: {type(e).__name__}: {e}", reload=True, relogin=True)
        self.disarm_deadman()
        for ident, summary, diff in self.plan.changes:
            self.ctx.changed(ident, summary, diff)
        self.ctx.changed(f"service[{self.service}]", f"reloaded {self.service}; fresh login ok in {seconds:.2f} s")
        self.ctx.outcome.data["fresh_login_s"] = round(seconds, 3)

    def install_and_prove(self, dropin_cand: str | None, main_cand: str | None) -> float:
        """Install, `sshd -t` the whole config, check `sshd -T`, reload, and return the fresh login's time."""
        installed = self.ctx.run(install_script(self.stamp, dropin_cand, main_cand, self.state.dropin is not None),
                                 check=False)
        if not installed.ok:
            self.fail(f"installing the files failed: {installed.stderr.strip()}", reload=False)
        whole = self.ctx.run(f"{SSHD} -t", check=False)
        if not whole.ok:
            self.fail(f"sshd -t rejects the whole config with the drop-in: {whole.stderr.strip()}", reload=False)
        self.check_effective()
        reloaded = self.ctx.run(reload_script(self.service, self.port), check=False)
        if not reloaded.ok:
            self.fail(f"systemctl reload {self.service} failed: {reloaded.stderr.strip()}", reload=True)
        try:
            seconds = fresh_login(self.ctx)
        except TransportError as e:
            self.fail(f"a fresh SSH login failed after the reload ({e})", reload=True, relogin=True)
        return seconds

    def stage_candidates(self) -> tuple[str | None, str | None]:
        """Candidates next to their targets, each vetted by `sshd -t -f` before anything live changes."""
        session = self.ctx.session
        if self.plan.dropin_new is not None and not self.state.dir_exists:
            self.ctx.run(f"mkdir -p -m 0755 {q(DROPIN_DIR)}")
            self.dir_created = True
        staged: list[str] = []
        try:
            dropin = main = None
            if self.plan.dropin_new is not None:
                dropin = session.stage_file(self.plan.dropin_new.encode(), DROPIN, "0644")
                staged.append(dropin)
                self.vet(dropin, "the drop-in on its own")
            if self.plan.main_new is not None:
                mode, owner, group = self.state.main_stat
                main = session.stage_file(self.plan.main_new.encode("utf-8", "surrogateescape"), MAIN_CONFIG,
                                          mode, owner, group)
                staged.append(main)
                self.vet(main, f"{MAIN_CONFIG} with the Include line")
            return dropin, main
        except BaseException:
            self.discard(staged)
            raise

    def discard(self, candidates: list[str]) -> None:
        """Nothing went live yet: remove the candidates (and the directory if this attempt made it)."""
        if candidates:
            self.ctx.run("rm -f " + " ".join(q(c) for c in candidates), check=False)
        if self.dir_created:
            self.ctx.run(f"rmdir {q(DROPIN_DIR)}", check=False)

    def vet(self, candidate: str, what: str) -> None:
        """`sshd -t -f candidate`: a rejected candidate stops the step before any live file changes."""
        r = self.ctx.run(f"{SSHD} -t -f {q(candidate)}", check=False)
        if not r.ok:
            raise StepFailed(f"sshd rejects {what} (nothing changed): {(r.stderr or r.stdout).strip()}")

    def check_effective(self) -> None:
        """`sshd -T -C` for our own login must show every wanted value (first value wins, Match applies)."""
        spec = match_spec(self.ctx.session.user, self.state.conn)
        r = self.ctx.run(f"{SSHD} -T -C {q(spec)}", check=False)
        if not r.ok:
            self.fail(f"sshd -T fails: {r.stderr.strip()}", reload=False)
        wrong = mismatches(self.settings, parse_effective(r.stdout))
        if wrong:
            setters = setters_text(self.ctx, self.settings)
            self.fail(f"sshd would not use the drop-in: {'; '.join(wrong)}. sshd uses the FIRST value it reads; "
                      f"lines that set these keywords: {setters or '(none found)'}", reload=False)

    def arm_deadman(self) -> None:
        """Commit-confirmed: if the controller dies mid-change, systemd restores the old files by itself."""
        if self.ctx.facts.init != "systemd":
            return
        unit = f"hive-sshd-rollback-{self.stamp}"
        script = f"/run/{unit}.sh"
        body = f"rm -f {q(script)}\n" + self.rollback(reload=True) + "\n"  # sh keeps reading a removed file
        self.ctx.session.upload(body.encode(), script, "0700")
        self.deadman = (unit, script)
        self.ctx.run(deadman_command(unit, script, DEADMAN_SECONDS))

    def disarm_deadman(self) -> None:
        """The change is proven (or already undone): the timer must never fire."""
        if self.deadman is not None:
            unit, script = self.deadman
            self.ctx.run(f"systemctl stop {q(unit + '.timer')} 2>/dev/null; rm -f {q(script)}", check=False)
            self.deadman = None

    def rollback(self, reload: bool) -> str:
        """The shell that undoes this attempt."""
        return rollback_script(self.stamp, self.service, self.dropin_mode, self.plan.main_new is not None,
                               self.dir_created, reload, self.port)

    def fail(self, why: str, reload: bool, relogin: bool = False) -> NoReturn:
        """Restore the old files through the still-open session, prove we still get in, then fail the step."""
        undo = self.ctx.run(self.rollback(reload), check=False)
        self.disarm_deadman()
        if not undo.ok:
            raise StepFailed(f"{why}; ROLLBACK FAILED ({undo.stderr.strip()}): check {MAIN_CONFIG} and {DROPIN}")
        note = "rolled back"
        if relogin:
            try:
                fresh_login(self.ctx)
                note = "rolled back; a fresh login works again"
            except TransportError as e:
                note = f"rolled back, but a fresh login still fails: {e}"
        raise StepFailed(f"{why}; {note}")
