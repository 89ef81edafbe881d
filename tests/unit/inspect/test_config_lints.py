"""netjail/inspect/config.py lints: one warning per entry that allows more than it seems to, naming it and the fix."""

from __future__ import annotations

import pytest

from netjail.inspect.config import lints
from netjail.settings import Settings


def settings(allowed: list[str], denied: list[str] = (), hosts: dict[str, str] | None = None) -> Settings:
    return Settings.model_validate(
        {
            "network": {"allowedDomains": allowed, "deniedDomains": list(denied), "hosts": hosts or {}},
            "filesystem": {"denyRead": [], "allowWrite": ["."], "denyWrite": []},
        },
        by_alias=True,
        by_name=False,
    )


@pytest.mark.parametrize(
    "wildcard",
    ["*.githubusercontent.com", "*.s3.amazonaws.com", "*.cloudfront.net", "*.workers.dev", "*.azurewebsites.net",
     "*.storage.googleapis.com", "*.herokuapp.com"],
)  # fmt: skip
def test_a_shared_multi_tenant_wildcard_is_one_warning(wildcard: str) -> None:
    found = [lint for lint in lints(settings([wildcard])) if "shared" in lint.problem]
    assert len(found) == 1
    assert found[0].field == f'network.allowedDomains "{wildcard}"'
    assert found[0].fix.startswith("list the exact hosts you need instead")


@pytest.mark.parametrize(
    "entry", ["*.github.com", "*.example.com", "github.com", "objects.githubusercontent.com"]
)
def test_a_wildcard_below_one_owner_is_not_flagged(entry: str) -> None:
    assert [lint for lint in lints(settings([entry])) if "shared" in lint.problem] == []


@pytest.mark.parametrize(
    ("allowed", "host"),
    [(["dns.google"], "dns.google"), (["*.cloudflare-dns.com"], "mozilla.cloudflare-dns.com"),
     (["pastebin.com"], "pastebin.com"), (["gist.github.com:443"], "gist.github.com"), (["transfer.sh"], "transfer.sh")],
)  # fmt: skip
def test_a_host_that_tunnels_anything_is_one_warning(allowed: list[str], host: str) -> None:
    (lint,) = [lint for lint in lints(settings(allowed)) if host in lint.problem]
    assert lint.field == f'network.allowedDomains "{allowed[0]}"'
    assert f"add '{host}' to network.deniedDomains" in lint.fix


def test_a_denied_tunnel_host_is_not_flagged() -> None:
    assert lints(settings(["*.github.com"], denied=["gist.github.com"])) == []


def test_a_local_pin_without_a_port_is_one_warning_and_with_a_port_none() -> None:
    (lint,) = lints(settings(["mirror.internal"], hosts={"mirror.internal": "10.1.2.3"}))
    assert lint.field == 'network.hosts "mirror.internal"'
    assert "10.1.2.3 (private)" in lint.problem and "'mirror.internal:443'" in lint.fix
    assert lints(settings(["mirror.internal:443"], hosts={"mirror.internal": "10.1.2.3"})) == []
    assert lints(settings(["mirror.example"], hosts={"mirror.example": "93.184.216.34"})) == []


def test_a_lint_on_a_preset_host_names_the_preset() -> None:
    (lint,) = lints(settings(["dns.google"]), {"@pip": ["dns.google"]})
    assert lint.field == 'network.allowedDomains "dns.google" (from @pip)'


def test_the_readme_example_is_the_linters_first_customer() -> None:
    found = lints(
        settings(
            ["pypi-mirror.corp.example", "github.com", "*.githubusercontent.com"], denied=["gist.github.com"]
        )
    )
    assert [lint.field for lint in found] == ['network.allowedDomains "*.githubusercontent.com"'] * 2
    assert "shared" in found[0].problem and "gist.githubusercontent.com" in found[1].problem
