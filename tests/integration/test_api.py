"""The Python API: `from netjail import Sandbox` runs commands through the real netjail and returns their records."""

from __future__ import annotations

import json
import subprocess
import threading

import pytest

from netjail import Sandbox, SandboxError
from netjail.settings import Settings, SettingsError
from tests.support.netjail import Netjail
from tests.support.servers import Origin

pytestmark = pytest.mark.nonroot

CURL = "curl -sS --max-time 20 -o /dev/null -w '%{http_code}'"


def _settings(netjail: Netjail) -> dict:
    return json.loads(netjail.settings({"allowedDomains": ["allowed.test"]}).read_text())


def test_two_commands_in_one_sandbox_each_with_its_flows(netjail: Netjail, http_origin: Origin) -> None:
    with Sandbox(_settings(netjail), state_dir=netjail.state) as sandbox:
        first = sandbox.run(f"{CURL} http://allowed.test:{http_origin.port}/api-1", cwd=netjail.work)
        second = sandbox.run(
            ["sh", "-c", f"{CURL} http://denied.test:{http_origin.port}/api-2"], cwd=netjail.work
        )
    assert (first.returncode, first.stdout) == (0, "200"), first.stderr
    assert second.stdout == "403"
    assert [(f["host"], f["verdict"], f["path"]) for f in first.flows] == [
        ("allowed.test", "allow", "/api-1")
    ]
    assert [(f["host"], f["verdict"]) for f in second.denied] == [("denied.test", "deny")]
    assert first.run_dir != second.run_dir and sandbox.runs == [first, second]
    assert first.run_end is not None and first.run_end["exit_status"] == 0


def test_runs_at_the_same_time_never_mix_their_flows(netjail: Netjail, http_origin: Origin) -> None:
    sandbox = Sandbox(_settings(netjail), state_dir=netjail.state)
    results: dict[int, object] = {}

    def run(n: int) -> None:
        results[n] = sandbox.run(
            f"for i in 1 2 3; do {CURL} http://allowed.test:{http_origin.port}/t{n}-$i; done",
            cwd=netjail.work,
        )

    threads = [threading.Thread(target=run, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for n, done in results.items():
        assert {f["path"] for f in done.flows} == {f"/t{n}-1", f"/t{n}-2", f"/t{n}-3"}  # type: ignore[attr-defined]


def test_a_typed_settings_object_works_like_the_file(netjail: Netjail, http_origin: Origin) -> None:
    typed = Settings.model_validate(_settings(netjail))
    done = Sandbox(typed, state_dir=netjail.state).run(
        f"{CURL} http://allowed.test:{http_origin.port}/typed", cwd=netjail.work
    )
    assert done.stdout == "200" and done.flows[0]["verdict"] == "allow"


def test_bad_settings_are_refused_when_the_sandbox_is_made(netjail: Netjail) -> None:
    settings = _settings(netjail)
    settings["network"]["allowedDomains"] = ["*"]
    with pytest.raises(
        SettingsError, match=r"network\.allowedDomains\[0\]: Pattern '\*' would allow every host"
    ):
        Sandbox(settings, state_dir=netjail.state)
    assert not (netjail.state / "runs").exists() or not list((netjail.state / "runs").iterdir())


def test_a_failing_command_and_a_failing_netjail_are_told_apart(netjail: Netjail) -> None:
    sandbox = Sandbox(_settings(netjail), state_dir=netjail.state)
    done = sandbox.run("exit 125", cwd=netjail.work)  # the command's own 125 is not netjail failing
    assert done.returncode == 125 and done.run_end is not None and done.run_end["reason"] == "exited"
    with pytest.raises(subprocess.CalledProcessError, match="returned non-zero exit status 3"):
        sandbox.run("exit 3", cwd=netjail.work, check=True)
    # an export that cannot be set up: netjail refuses before anything runs
    bad_export = {"OTEL_LOGS_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}
    with pytest.raises(SandboxError, match="OTEL_EXPORTER_OTLP_PROTOCOL") as failed:
        sandbox.run("touch ran", cwd=netjail.work, env=bad_export)
    assert failed.value.completed.returncode == 125 and failed.value.completed.run_dir is None
    assert not (netjail.work / "ran").exists()
