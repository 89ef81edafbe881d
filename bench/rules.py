"""What a request rule costs per request: Policy.judge_request (path read twice, rules matched) beside the domain
judgement every request already pays (judge_destination), on the GitHub read-only example of docs/policy.md.

    .venv/bin/python bench/rules.py              # 100,000 calls per case, 5 runs, the median
"""

from __future__ import annotations

import argparse
import statistics
import time

from netjail.net.domains import Host
from netjail.policy.decision import Policy
from netjail.settings import NetworkSettings

GITHUB = {
    "allowedDomains": ["github.com", "api.github.com"],
    "deniedDomains": [],
    "rules": [
        {
            "hosts": ["github.com"],
            "default": "deny",
            "requests": [
                {"deny": "*", "path": "/**/info/refs", "query": "*service=git-receive-pack*"},
                {"deny": "*", "path": "/**/git-receive-pack"},
                {"allow": ["GET", "HEAD"], "path": "/**"},
                {"allow": "POST", "path": "/*/*/git-upload-pack"},
            ],
        }
    ],
}
CASES = {
    "judge_destination (every request)": lambda p, h: p.judge_destination(h, 443),
    "judge_request GET, 3rd entry": lambda p, h: p.judge_request(
        h, 443, "GET", "/org/repo/blob/main/README.md"
    ),
    "judge_request POST, 4th entry": lambda p, h: p.judge_request(
        h, 443, "POST", "/org/repo.git/git-upload-pack"
    ),
    "judge_request ambiguous (%2F)": lambda p, h: p.judge_request(h, 443, "GET", "/org%2Frepo"),
    "judge_request, host without rules": lambda p, h: p.judge_request(
        Host("api.github.com", None), 443, "GET", "/x"
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    policy = Policy.of(NetworkSettings.model_validate(GITHUB))
    host = Host("github.com", None)
    for name, case in CASES.items():
        runs = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            for _ in range(args.calls):
                case(policy, host)
            runs.append((time.perf_counter() - start) / args.calls * 1e6)
        print(f"{name:40} {statistics.median(runs):6.2f} µs/call")


if __name__ == "__main__":
    main()
