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
# Tool settings that hold no secret, passed so that tools behave inside as outside (pip's version check and
# timeout, npm's notifier, …). Reviewed per family; by name only, never by prefix: every family also has names
# that hold a credential (left out, named in each comment), and those pass only through envPassthrough.
TOOL_CONFIG_VARIABLES = frozenset(
    {
        # pip (not PIP_CLIENT_CERT, PIP_PROXY: a key's path, a proxy URL with its password)
        "PIP_DISABLE_PIP_VERSION_CHECK", "PIP_DEFAULT_TIMEOUT", "PIP_TIMEOUT", "PIP_RETRIES", "PIP_NO_CACHE_DIR",
        "PIP_CACHE_DIR", "PIP_NO_INPUT", "PIP_PROGRESS_BAR", "PIP_NO_COLOR", "PIP_ONLY_BINARY", "PIP_NO_BINARY",
        "PIP_PREFER_BINARY", "PIP_REQUIRE_VIRTUALENV", "PIP_USER", "PIP_BREAK_SYSTEM_PACKAGES",
        "PIP_ROOT_USER_ACTION", "PIP_UPGRADE_STRATEGY", "PIP_CONSTRAINT",
        # Python itself
        "PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PYTHONIOENCODING", "PYTHONWARNINGS", "PYTHONHASHSEED",
        "PYTHONNOUSERSITE", "PYTHONSAFEPATH", "PYTHONPYCACHEPREFIX", "PYTHON_BASIC_REPL",
        # uv, poetry, pipx (not UV_PUBLISH_TOKEN, UV_INDEX_*_PASSWORD, POETRY_PYPI_TOKEN_*, POETRY_HTTP_BASIC_*);
        # index URLs lose their credentials as PIP_INDEX_URL does
        "UV_CACHE_DIR", "UV_NO_CACHE", "UV_PYTHON", "UV_LINK_MODE", "UV_NO_PROGRESS", "UV_CONCURRENT_DOWNLOADS",
        "UV_HTTP_TIMEOUT", "UV_INDEX_URL", "UV_EXTRA_INDEX_URL", "UV_DEFAULT_INDEX", "UV_INDEX",
        "POETRY_CACHE_DIR", "POETRY_VIRTUALENVS_IN_PROJECT", "POETRY_NO_INTERACTION", "PIPX_HOME", "PIPX_BIN_DIR",
        # npm, yarn, pnpm, corepack, node (not NPM_TOKEN, NODE_AUTH_TOKEN, YARN_NPM_AUTH_TOKEN, and no
        # npm_config_* prefix: `npm_config__authToken` is one)
        "npm_config_update_notifier", "NPM_CONFIG_UPDATE_NOTIFIER", "npm_config_fund", "NPM_CONFIG_FUND",
        "npm_config_audit", "NPM_CONFIG_AUDIT", "npm_config_loglevel", "NPM_CONFIG_LOGLEVEL", "npm_config_progress",
        "NPM_CONFIG_PROGRESS", "NPM_CONFIG_CACHE", "npm_config_prefer_offline", "NPM_CONFIG_PREFER_OFFLINE",
        "npm_config_fetch_retries", "NPM_CONFIG_FETCH_RETRIES", "npm_config_fetch_timeout",
        "NPM_CONFIG_FETCH_TIMEOUT", "npm_config_yes", "NPM_CONFIG_YES", "NO_UPDATE_NOTIFIER", "NODE_ENV",
        "NODE_OPTIONS", "NODE_NO_WARNINGS", "YARN_CACHE_FOLDER", "YARN_ENABLE_TELEMETRY", "PNPM_HOME",
        "COREPACK_HOME", "COREPACK_ENABLE_DOWNLOAD_PROMPT", "NEXT_TELEMETRY_DISABLED",
        # git (not GIT_ASKPASS, GIT_CONFIG_COUNT / GIT_CONFIG_KEY_n / GIT_CONFIG_VALUE_n: an extraHeader token)
        "GIT_TERMINAL_PROMPT", "GIT_PAGER", "GIT_EDITOR", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL",
        "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL",
        # Go (not GOAUTH, GOINSECURE)
        "GOPRIVATE", "GONOSUMDB", "GONOPROXY", "GOSUMDB", "GOTOOLCHAIN", "GOCACHE", "CGO_ENABLED", "GOOS", "GOARCH",
        # Rust (not CARGO_REGISTRY_TOKEN, CARGO_REGISTRIES_*_TOKEN)
        "CARGO_TERM_COLOR", "CARGO_TARGET_DIR", "CARGO_INCREMENTAL", "CARGO_NET_RETRY", "CARGO_HTTP_TIMEOUT",
        "RUST_BACKTRACE", "RUST_LOG", "RUSTFLAGS",
        # Ruby bundler (not BUNDLE_<HOST>: a host's user:password)
        "BUNDLE_JOBS", "BUNDLE_RETRY", "BUNDLE_WITHOUT", "BUNDLE_DEPLOYMENT",
        # C and C++ builds (not MAVEN_OPTS, GRADLE_OPTS, JAVA_OPTS: they carry -D…password= as often as not)
        "CC", "CXX", "CFLAGS", "CXXFLAGS", "CPPFLAGS", "LDFLAGS", "PKG_CONFIG_PATH", "MAKEFLAGS",
        # opting out of telemetry
        "DO_NOT_TRACK", "DOTNET_CLI_TELEMETRY_OPTOUT", "HOMEBREW_NO_ANALYTICS", "HF_HUB_DISABLE_TELEMETRY",
    }
)  # fmt: skip
PASSED_BY_DEFAULT = INHERITED_VARIABLES | TOOL_CONFIG_VARIABLES

# The environment rule, said the same way by explain, the docs and srt-compat (tests/unit/jail/test_environment.py).
ENVIRONMENT_RULE = (
    "The command inherits only the variables netjail passes by default (shell, locale, toolchain and tool "
    "settings that hold no secret, each listed in netjail/jail/environment.py), with credentials taken out of "
    "their values, and the variables named in envPassthrough, passed whole; every other variable is withheld."
)


def passes(name: str, passthrough: Iterable[str] = (), credentials: Iterable[str] = ()) -> bool:
    """Precedence: a declared credential never passes; then envPassthrough; then the defaults."""
    if name in set(credentials):
        return False
    return name in PASSED_BY_DEFAULT or name.startswith(INHERITED_PREFIXES) or name in set(passthrough)


def inherited_environment(
    environ: Mapping[str, str], passthrough: Iterable[str] = (), credentials: Iterable[str] = ()
) -> dict[str, str]:
    keep, never = set(passthrough), set(credentials)
    return {k: v for k, v in environ.items() if passes(k, keep, never)}


def withheld_names(
    environ: Mapping[str, str], passthrough: Iterable[str] = (), credentials: Iterable[str] = ()
) -> list[str]:
    """The names (never the values) of the variables the command does not get."""
    keep, never = set(passthrough), set(credentials)
    return sorted(k for k in environ if not passes(k, keep, never))


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
