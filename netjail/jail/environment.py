"""The command's environment inside a jail: what it inherits from netjail's own, and the variables that route its
clients through the proxy and make them trust the run's CA."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

# What the command inherits from netjail's environment without being asked: what shells, terminals, locales and
# toolchains need to work, and nothing that commonly holds a credential (tokens, keys, agent sockets, DISPLAY).
# Anything else passes only when named in the settings' envPassthrough.
INHERITED_VARIABLES = frozenset(
    {
        "PATH", "HOME", "USER", "LOGNAME", "SHELL", "PWD", "TERM", "COLORTERM", "TZ", "TMPDIR",
        "LANG", "LANGUAGE", "EDITOR", "VISUAL", "PAGER", "LESS", "NO_COLOR", "FORCE_COLOR", "CLICOLOR",
        "COLUMNS", "LINES", "CI", "DEBIAN_FRONTEND", "LD_LIBRARY_PATH",
        "XDG_CONFIG_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME",
        "VIRTUAL_ENV", "CONDA_PREFIX", "PYENV_ROOT", "PYENV_VERSION", "PYTHONPATH", "PYTHONUTF8",
        "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_CONFIG_FILE",
        "NVM_DIR", "NODE_PATH", "NPM_CONFIG_REGISTRY", "npm_config_registry", "npm_config_cache",
        "GOPATH", "GOROOT", "GOMODCACHE", "GOFLAGS", "GOPROXY", "CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN",
        "JAVA_HOME", "MAVEN_HOME", "GRADLE_USER_HOME", "GEM_HOME", "GEM_PATH", "BUNDLE_PATH",
    }
)  # fmt: skip
INHERITED_PREFIXES = ("LC_",)


def inherited_environment(environ: Mapping[str, str], passthrough: Iterable[str] = ()) -> dict[str, str]:
    keep = INHERITED_VARIABLES | set(passthrough)
    return {k: v for k, v in environ.items() if k in keep or k.startswith(INHERITED_PREFIXES)}


def masked_environment(
    base: Mapping[str, str], masked: Mapping[str, str], withheld: Iterable[str]
) -> dict[str, str]:
    """`base` with credentials.envVars applied: masked variables hold their placeholder values, the withheld ones
    (mode "deny", or a mask that found nothing to mask) are absent, whatever the defaults or envPassthrough say."""
    drop = set(withheld)
    return {k: v for k, v in base.items() if k not in drop} | dict(masked)


CA_REPLACING_VARS = (
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "PIP_CERT",
    "GIT_SSL_CAINFO",
    "AWS_CA_BUNDLE",
    "CARGO_HTTP_CAINFO",
    "HEX_CACERTS_PATH",
)
CA_ADDITIVE_VARS = ("NODE_EXTRA_CA_CERTS", "DENO_CERT")


def jail_environment(base: dict[str, str], proxy_url: str, jail_bundle: str, ca_cert: str) -> dict[str, str]:
    """The command's environment: the host's, plus the variables that route clients through the proxy and
    make them trust the run's CA (the same set srt sets, and the CA variables it does not)."""
    env = dict(base)
    host, _, port = proxy_url.removeprefix("http://").rpartition(":")
    no_proxy = "localhost,127.0.0.1,::1"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "GRPC_PROXY"):
        env[name] = env[name.lower()] = proxy_url
    env["NO_PROXY"] = env["no_proxy"] = no_proxy
    env["NODE_USE_ENV_PROXY"] = "1"  # Node's built-in fetch ignores the variables without it
    env["JAVA_TOOL_OPTIONS"] = " ".join(
        filter(
            None,
            [
                base.get("JAVA_TOOL_OPTIONS", ""),
                f"-Dhttp.proxyHost={host} -Dhttp.proxyPort={port}",
                f"-Dhttps.proxyHost={host} -Dhttps.proxyPort={port}",
                "-Dhttp.nonProxyHosts=localhost|127.0.0.1",
            ],
        )
    )
    env["GIT_SSH_COMMAND"] = (
        f"ssh -o ControlMaster=no -o ControlPath=none -o ProxyCommand='socat - PROXY:{host}:%h:%p,proxyport={port}'"
    )
    for name in CA_REPLACING_VARS:
        env[name] = jail_bundle
    for name in CA_ADDITIVE_VARS:
        env[name] = ca_cert
    env["NETJAIL"] = "1"
    env["SANDBOX_RUNTIME"] = "1"  # tools that detect srt's sandbox behave the same here
    return env
