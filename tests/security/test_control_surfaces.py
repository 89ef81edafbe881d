"""ATTACKS.md N11: no control surface of netjail or mitmproxy is reachable from inside the jail — mitmproxy's
onboarding app (`mitm.it`, which serves certificates), proxy paths such as `/cert` asked of the proxy itself,
even when the command's settings allow `mitm.it`. Through the real binary, beside a control that arrives."""

from __future__ import annotations

import pytest

from tests.support.netjail import Netjail
from tests.support.servers import Origin

pytestmark = pytest.mark.nonroot

GET = "curl -s --max-time 10 -w ' %{http_code}\\n'"


def test_n11_mitmproxys_onboarding_and_proxy_paths_answer_nothing(
    netjail: Netjail, http_origin: Origin
) -> None:
    cfg = netjail.settings({"allowedDomains": ["allowed.test", "mitm.it"]})
    script = (
        f"{GET} http://mitm.it/cert/pem; {GET} http://mitm.it/; "
        f"{GET} --noproxy '*' http://127.0.0.1:3128/cert/pem; "
        f"{GET} -o /dev/null http://allowed.test:{http_origin.port}/"
    )
    result = netjail.run("-s", str(cfg), "-c", script)
    lines = result.stdout.splitlines()
    assert "BEGIN CERTIFICATE" not in result.stdout and "mitmproxy" not in result.stdout.lower(), (
        result.explain()
    )
    assert all(line.split()[-1] != "200" for line in lines[:-1]), result.explain()
    assert lines[-1].split()[-1] == "200", "the control reaches its origin"
