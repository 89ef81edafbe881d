"""netjail's mitmproxy addons, installed as `netjail.addons` (pyproject.toml maps this folder there).

Each file is also a stock mitmproxy script: `mitmdump -s addons/policy.py -s addons/recorder.py`. The package
exports nothing itself: netjail imports the modules it needs, and importing one imports mitmproxy.
"""
