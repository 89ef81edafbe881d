"""What a run asks of the jail and tells the proxy, from the validated settings: the JailSpec (also shown by
`netjail explain`, which creates nothing) and the proxy's configuration."""

from __future__ import annotations

import os
from pathlib import Path

from netjail.detect.canaries import DECOY_FILE, CanaryPlan
from netjail.jail.credentials import MaskPlan
from netjail.jail.environment import inherited_environment, masked_environment
from netjail.jail.paths import path_rules
from netjail.jail.scrub import Scrubbed, scrub_environment
from netjail.jail.spec import Jail, JailSpec, PathRules
from netjail.proxy.ca import RunCA
from netjail.records.rundir import (
    RunDir,
    default_state_dir,
    known_state_dirs,
    live_root,
    register_state_dir,
    state_dir,
)
from netjail.settings import LoadedSettings, Settings


def private_state(rules: PathRules, prepare: bool) -> tuple[Path, ...]:
    """netjail's own state and user settings: masked inside. The settings folder is made when it is missing
    but would be writable inside, so the command cannot plant a settings file for the next run."""
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    user_settings = config_home / "netjail"
    writable = any(w == user_settings or w in user_settings.parents for w in rules.writable)
    if prepare and writable and not user_settings.exists():
        user_settings.mkdir(parents=True, mode=0o700, exist_ok=True)
    # Every state directory netjail knows of is hidden: this run's, the default one (the history, when a custom
    # one is set; made now when missing, since a mount cannot hide what appears after the jail starts) and the
    # live root, where every run of this user keeps its CA key and secrets.
    # Custom state directories earlier runs used are hidden too (not those holding what the run may use).
    history = default_state_dir()
    if prepare:
        history.mkdir(parents=True, mode=0o700, exist_ok=True)
        register_state_dir()
    used = (*rules.writable, *rules.reallowed)
    others = [d for d in known_state_dirs() if d.is_dir() and not any(d == u or d in u.parents for u in used)]
    return tuple(dict.fromkeys((state_dir(), history, user_settings, live_root(), *others)))


def inherited_variables(settings: Settings) -> Scrubbed:
    """What the command inherits: the default variables and envPassthrough, credentials taken out of the
    defaults' values (envPassthrough passes whole)."""
    passthrough = settings.env_passthrough
    inherited = inherited_environment(os.environ, passthrough, credential_variables(settings))
    return scrub_environment(inherited, passthrough)


def credential_variables(settings: Settings) -> list[str]:
    """srt's credentials.envVars: withheld even when the default list names them (credentials > envPassthrough >
    defaults)."""
    return [v.name for v in settings.credentials.env_vars]


def build_spec(
    jail: Jail,
    loaded: LoadedSettings,
    argv: tuple[str, ...],
    cwd: Path,
    ca: RunCA,
    files_dir: Path,
    *,
    debug: bool = False,
    prepare: bool = True,
    masks: MaskPlan | None = None,
    canaries: CanaryPlan | None = None,
) -> JailSpec:
    """What the jail is asked to apply, from the settings: used by a run, and by `netjail explain` (prepare=False:
    it creates nothing). `canaries`: audit.canaries' decoys, their file written in `files_dir` (netjail/detect/
    canaries.py)."""
    settings = loaded.settings
    rules = path_rules(settings, cwd, extra_read_only=(loaded.path.resolve(),), settings_file=loaded.path)
    inherited = inherited_variables(settings)
    masks = masks or MaskPlan(withheld=[v.name for v in settings.credentials.env_vars])
    env = jail.environment(masked_environment(inherited.env, masks.env, masks.withheld), ca)
    decoys: tuple[tuple[Path, Path], ...] = ()
    if canaries is not None:
        env = canaries.env | env  # a variable the command gets anyway is never replaced by a canary
        if canaries.file_text:
            decoys = ((Path(DECOY_FILE), files_dir / "canary-credentials"),)
    return JailSpec(
        argv=argv,
        cwd=cwd,
        env=env,
        rules=rules,
        ca=ca,
        allow_pty=settings.allow_pty,
        private_state=private_state(rules, prepare),
        files_dir=files_dir,
        capture=settings.network.capture,
        allow_unix_sockets=settings.network.allow_all_unix_sockets,
        debug=debug,
        masked_files=(*masks.files, *decoys),
        observe_writes=settings.record.refused_writes,
    )


def proxy_config(
    runs: RunDir,
    ca: RunCA,
    capture_mode: str,
    proxy_secret: str | None,
    debug: bool,
    masks: MaskPlan | None = None,
    canaries: CanaryPlan | None = None,
) -> dict:
    """What the proxy process is told (netjail/proxy/process.py). `proxy_secret`: the listener is reachable from
    outside the jail, so only the run's clients may use it. `masks`: the masked credentials, real values
    included, which travel over the control socket only, never through a file."""
    masks = masks or MaskPlan()
    secret_file = None
    if proxy_secret is not None:
        secret_file = runs.proxy_dir / "proxy-secret"
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(proxy_secret)
    return {
        "settings": str(runs.settings_json),
        "record_dir": str(runs.path),
        "confdir": str(ca.confdir),
        "upstream_trust": str(ca.host_bundle),
        "log_file": str(runs.path / "proxy.log"),
        "capture_mode": capture_mode,
        "secret_file": str(secret_file) if secret_file else None,
        "debug": debug,
        "credentials": [c.as_config() for c in masks.credentials],  # real values: this socket, never a file
        "allow_plaintext_inject": masks.allow_plaintext_inject,
        "aws_pairs": masks.aws_pairs,
        "sigv4": masks.sigv4,
        "canaries": [c.as_config() for c in canaries.canaries] if canaries else [],  # this socket only
    }
