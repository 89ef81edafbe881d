# Over 500 lines: most of it is the INVENTORY table, which belongs beside the scan that reads it (one idea).
"""What a host tool executes later: the protected names, and the scan that finds them under the writable roots.

The boundary: whatever git, an editor, a shell, an agent or CI runs without the user choosing to run project code
(git on any command, editors on open, shells on `cd` or start, agents on start, CI definitions on push). Project
code the user runs himself (`make`, `npm test`, `./run.sh`) is out of scope. Every name is listed once, in
`INVENTORY`, with the tool that runs it; docs/security.md renders the same table (a unit test keeps them equal).

Before the command starts, `scan()` walks every writable root to any depth (os.scandir, no stat per entry, a
documented skip list, an entry budget past which the run is refused rather than half protected) and returns
- `read_only`: existing protected paths, every git directory's redirection files, the targets of its
  `core.hooksPath` and `include.path`, home-level autoexec paths and netjail's own installation;
- `placeholders`: names inside a git directory that do not exist yet, as files or directories git reads as
  absent (`commondir` = ".", empty `config.worktree`, empty `hooks/` and `info/`), created before the jail starts,
  bound read-only, removed when the run ends;
- `missing`: other protected names that do not exist yet (no stub in the user's tree: watched, then quarantined).
"""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from netjail.jail import gitconfig

Scope = Literal["tree", "home", "git"]


@dataclass(frozen=True)
class Protected:
    name: str  # '/'-separated, relative to where the scope anchors it; a trailing '/' marks a directory
    why: str  # which tool runs it, and when
    scope: Scope = (
        "tree"  # tree: any depth under a writable root; home: the home directory; git: every git dir
    )


def _tree(name: str, why: str) -> Protected:
    return Protected(name, why, "tree")


def _home(name: str, why: str) -> Protected:
    return Protected(name, why, "home")


def _git(name: str, why: str) -> Protected:
    return Protected(name, why, "git")


INVENTORY: tuple[Protected, ...] = (
    # git, on any command
    _tree(
        ".gitconfig",
        "git reads it as the global config when it is $HOME/.gitconfig (pager, fsmonitor, aliases)",
    ),
    _tree(".gitmodules", "git submodule reads URLs and update modes from it on clone, pull, update"),
    _tree(".githooks/", "a common core.hooksPath: git runs its hooks on commit, checkout, merge, push"),
    _tree(".husky/", "husky sets core.hooksPath to it: git runs its hooks on commit and push"),
    _tree(".pre-commit-config.yaml", "pre-commit's git hook runs the commands it lists on every commit"),
    _tree("lefthook.yml", "lefthook's git hooks run the commands it lists"),
    _tree(".lefthook.yml", "lefthook's git hooks run the commands it lists"),
    _tree("lefthook-local.yml", "lefthook's git hooks run the commands it lists (local override)"),
    _tree(".overcommit.yml", "overcommit's git hooks run the commands it lists"),
    # shells, on start
    _tree(".bashrc", "bash runs it at every interactive start"),
    _tree(".bash_profile", "bash runs it at login"),
    _tree(".bash_login", "bash runs it at login"),
    _tree(".bash_logout", "bash runs it at logout"),
    _tree(".bash_aliases", "Debian's .bashrc sources it"),
    _tree(".zshrc", "zsh runs it at every interactive start"),
    _tree(".zprofile", "zsh runs it at login"),
    _tree(".zshenv", "zsh runs it at every start, scripts included"),
    _tree(".zlogin", "zsh runs it at login"),
    _tree(".zlogout", "zsh runs it at logout"),
    _tree(".profile", "sh and bash run it at login"),
    # shells, on cd
    _tree(".envrc", "direnv runs it on cd into the directory (once allowed; users re-allow changed files)"),
    _tree("mise.toml", "mise runs its [env] sources and [hooks] on cd, and its tasks"),
    _tree(".mise.toml", "mise runs its [env] sources and [hooks] on cd, and its tasks"),
    _tree("mise.local.toml", "mise runs its [env] sources and [hooks] on cd"),
    _tree(".mise.local.toml", "mise runs its [env] sources and [hooks] on cd"),
    # editors, on open
    _tree(".vscode/", "VS Code: tasks.json with runOn folderOpen runs on open; settings.json names programs"),
    _tree(".idea/", "JetBrains IDEs: run configurations, startup tasks, external tools, file watchers"),
    _tree(
        ".devcontainer/",
        "dev containers: postCreateCommand and friends run when the folder is reopened in it",
    ),
    _tree(".exrc", "vim and neovim source it on start when 'exrc' is set"),
    _tree(".nvimrc", "neovim sources it on start when 'exrc' is set"),
    _tree(".nvim.lua", "neovim runs it on start when 'exrc' is set"),
    _tree(".dir-locals.el", "Emacs applies it on open (eval forms behind a prompt users click through)"),
    # agents, on start
    _tree(
        ".claude/settings.json", "Claude Code: hooks, statusLine, apiKeyHelper and MCP servers run on start"
    ),
    _tree(".claude/settings.local.json", "Claude Code: the same keys, local override"),
    _tree(".claude/hooks/", "Claude Code: the scripts its hooks name"),
    _tree(".claude/commands/", "Claude Code: slash commands (can run shell lines)"),
    _tree(".claude/agents/", "Claude Code: subagent definitions (their tools and prompts)"),
    _tree(".claude/skills/", "Claude Code: skills and the scripts they bundle"),
    _tree(".claude/plugins/", "Claude Code: installed plugins (hooks, MCP servers)"),
    _tree(".mcp.json", "Claude Code and others start the MCP servers it lists"),
    _tree(".cursor/mcp.json", "Cursor starts the MCP servers it lists"),
    _tree(".cursor/hooks.json", "Cursor runs its hooks around agent actions"),
    _tree(".cursor/hooks/", "Cursor: the scripts its hooks name"),
    _tree(".cursor/environment.json", "Cursor background agents run its install and start commands"),
    _tree(".codex/config.toml", "Codex CLI: MCP servers and the notify program"),
    _tree(".gemini/settings.json", "Gemini CLI: MCP servers, toolDiscoveryCommand, toolCallCommand, hooks"),
    _tree(".gemini/extensions/", "Gemini CLI: extensions (MCP servers, commands)"),
    _tree(".aider.conf.yml", "Aider runs lint-cmd and test-cmd after each edit (auto-lint is on by default)"),
    _tree(".continue/config.json", "Continue: MCP servers and context providers"),
    _tree(".continue/config.yaml", "Continue: MCP servers and context providers"),
    _tree(".continue/config.ts", "Continue runs it as code on start"),
    _tree(".continue/mcpServers/", "Continue starts the MCP servers it lists"),
    # CI, on push
    _tree(".github/workflows/", "GitHub Actions runs them on push, with the repository's secrets"),
    _tree(".github/actions/", "local actions the workflows use (`uses: ./.github/actions/x`)"),
    _tree(".gitlab-ci.yml", "GitLab CI runs it on push"),
    _tree(".circleci/", "CircleCI runs its config on push"),
    _tree(".buildkite/", "Buildkite agents upload and run its pipeline on push"),
    _tree(".travis.yml", "Travis CI runs it on push"),
    _tree("Jenkinsfile", "Jenkins multibranch pipelines run it on push"),
    _tree("azure-pipelines.yml", "Azure Pipelines runs it on push"),
    _tree("bitbucket-pipelines.yml", "Bitbucket Pipelines runs it on push"),
    _tree(".drone.yml", "Drone runs it on push"),
    _tree(".woodpecker.yml", "Woodpecker runs it on push"),
    _tree(".woodpecker/", "Woodpecker runs its pipelines on push"),
    _tree(".forgejo/workflows/", "Forgejo Actions runs them on push"),
    _tree(".gitea/workflows/", "Gitea Actions runs them on push"),
    # package tools, on any command of theirs
    _tree(".npmrc", "npm: script-shell, node-options (--require) and registries apply to every npm command"),
    _tree(".yarnrc", "yarn 1: yarn-path runs that file on every yarn command"),
    _tree(".yarnrc.yml", "yarn 2+: yarnPath runs that file on every yarn command"),
    _tree("bunfig.toml", "bun runs its preload scripts on every bun run and bun test"),
    _tree(".pypirc", "twine and pip read repository URLs and credentials from it"),
    _tree(".ripgreprc", "ripgrep reads its options from it (--pre runs a program per file)"),
    # inside every git directory: redirection files and hooks
    _git("config", "git reads it on every command (fsmonitor, pager, hooksPath, filters, aliases)"),
    _git("config.worktree", "git reads it with extensions.worktreeConfig, like config"),
    _git("commondir", "redirects git to another git directory, whose config and hooks then apply"),
    _git("hooks/", "git runs them on commit, checkout, merge, rebase, push"),
    _git("info/", "info/attributes selects filter and diff drivers; info/exclude, info/sparse-checkout"),
    _git("gitdir", "a linked worktree's way back to its checkout"),
    _git("modules/", "submodule git directories: each is protected as a git directory"),
    _git("worktrees/", "linked worktrees' git directories: each is protected as a git directory"),
    # the home directory, when it or part of it is writable
    _home(".config/git/", "git's global config, attributes and ignore file"),
    _home(".local/bin/", "first on most users' PATH: a `git` or `ls` there shadows the real one"),
    _home(
        ".local/lib/python*/site-packages/",
        "user site: every *.pth and usercustomize.py runs at each python start",
    ),
    _home(".config/systemd/user/", "systemd runs user units at login and on timers"),
    _home(".config/autostart/", "desktop sessions run these at login"),
    _home(".config/environment.d/", "systemd sets these variables (PATH, LD_PRELOAD) for the user session"),
    _home(".pam_environment", "PAM sets these variables at login"),
    _home(".xprofile", "display managers run it at login"),
    _home(".xsessionrc", "X sessions run it at login"),
    _home(".xinitrc", "startx runs it"),
    _home(".ssh/config", "ssh: ProxyCommand, LocalCommand and Match exec run programs"),
    _home(".ssh/authorized_keys", "sshd lets those keys log in (and their command= options run)"),
    _home(".ssh/authorized_keys2", "sshd lets those keys log in"),
    _home(".ssh/rc", "sshd runs it at every login"),
    _home(".ssh/environment", "sshd sets these variables at login when PermitUserEnvironment is on"),
    _home(".config/fish/", "fish runs config.fish, conf.d and functions at every start"),
    _home(".vimrc", "vim runs it at every start"),
    _home(".gvimrc", "gvim runs it at every start"),
    _home(".vim/", "vim loads plugin/, autoload/ and ftplugin/ scripts"),
    _home(".config/nvim/", "neovim runs init.lua and its plugins at every start"),
    _home(".local/share/nvim/", "neovim loads the plugins installed there (site/pack, lazy)"),
    _home(".tmux.conf", "tmux runs it at start (run-shell, if-shell)"),
    _home(".config/tmux/", "tmux runs tmux.conf at start"),
    _home(".config/direnv/", "direnv sources direnvrc on every cd and reads its trusted-path list"),
    _home(
        ".local/share/direnv/allow/", "direnv's allow list: an entry there makes an .envrc run without asking"
    ),
    _home(".config/mise/", "mise's global config: env, hooks and tools on every cd"),
    _home(".config/Code/User/", "VS Code's user settings, tasks and keybindings"),
    _home(".gemini/settings.json", "Gemini CLI's user settings (MCP servers, tool commands)"),
)

# Considered and left writable: data a tool reads, never a program it runs, or a program the user chooses to run.
NOT_PROTECTED: tuple[tuple[str, str], ...] = (
    (
        ".gitattributes",
        "selects drivers that only the (protected) git config defines; a cloned repository's does as much",
    ),
    (
        ".tool-versions, .nvmrc, .node-version, .python-version",
        "a version string; installing it is the user's choice",
    ),
    (".env", "data; loaded by project code the user runs (or by a protected .envrc)"),
    (
        "CLAUDE.md, AGENTS.md, .cursorrules, .cursor/rules/",
        "instructions to an agent, not programs it runs on its own",
    ),
    (".editorconfig", "formatting data"),
    (
        "~/.claude.json",
        "Claude Code rewrites it on every session; it holds per-project MCP servers: review it",
    ),
    (
        ".git/rebase-merge/, .git/sequencer/",
        "`exec` lines run only when the user continues an operation git status announces",
    ),
    (
        "Makefile, package.json scripts, tox.ini, noxfile.py, *.code-workspace",
        "project code the user chooses to run",
    ),
)

# Directories the repository scan does not enter: they hold no repository a user works in, and can be big.
SKIP_NAMES = frozenset(
    {"node_modules", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache", ".tox", ".nox", ".gradle"}
)
VENV_SKIP = frozenset(
    {"lib", "lib64"}
)  # inside a directory holding pyvenv.cfg (a virtualenv's site-packages)
BARE_GIT_PARTS = frozenset({"HEAD", "objects", "refs"})
CACHE_SKIP = frozenset({"target"})  # Cargo's build directory, when it holds CACHEDIR.TAG

DEFAULT_SCAN_LIMIT = 2_000_000  # entries: about 3 s at the ~670,000 entries/s bench/scan.py measures here
SCAN_LIMIT_VARIABLE = "NETJAIL_SCAN_LIMIT"

# names inside a git directory that may not exist, and what stands in for them: git reads each as absent
PLACEHOLDERS: dict[str, tuple[Literal["file", "dir"], bytes]] = {
    "commondir": ("file", b".\n"),  # the common directory is this one
    "config.worktree": ("file", b""),
    "hooks": ("dir", b""),
    "info": ("dir", b""),
}


class ScanRefused(Exception):
    """The scan passed its budget: the run must not start with part of a tree protected."""


@dataclass(frozen=True)
class Placeholder:
    path: Path
    kind: Literal["file", "dir"]
    content: bytes = b""

    def create(self) -> bool:
        """Create it unless something is there already; True when this call created it."""
        try:
            if self.kind == "dir":
                os.mkdir(self.path, 0o755)
            else:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
                with os.fdopen(fd, "wb") as f:
                    f.write(self.content)
        except FileExistsError:
            return False
        return True

    def remove(self) -> None:
        """Remove it if it is still exactly what create() made (it was read-only inside the jail)."""
        try:
            if self.kind == "dir":
                os.rmdir(self.path)
            elif not self.path.is_symlink() and self.path.read_bytes() == self.content:
                self.path.unlink()
        except OSError:
            pass


def create_placeholders(placeholders: Iterable[Placeholder]) -> list[Placeholder]:
    return [p for p in placeholders if p.create()]


def remove_placeholders(placeholders: Iterable[Placeholder]) -> None:
    for placeholder in reversed(list(placeholders)):
        placeholder.remove()


@dataclass
class Protection:
    read_only: list[Path] = field(default_factory=list)
    placeholders: list[Placeholder] = field(default_factory=list)
    missing: list[Path] = field(default_factory=list)
    # symlinks inside a writable root on the way to a protected path, with what they hold (os.readlink)
    links: list[tuple[Path, str]] = field(default_factory=list)
    entries: int = 0  # directory entries the scan read


def tree_names() -> list[str]:
    return [p.name for p in INVENTORY if p.scope == "tree"]


def git_dir_names() -> list[str]:
    return [p.name.rstrip("/") for p in INVENTORY if p.scope == "git"]


def installation_paths() -> list[Path]:
    """netjail's own installation: its environment, the interpreter's, site-packages, and the source checkout."""
    import sysconfig

    import netjail

    paths = [
        sys.prefix,
        sys.exec_prefix,
        sys.base_prefix,
        sysconfig.get_path("purelib"),
        sysconfig.get_path("platlib"),
    ]
    paths.append(os.path.dirname(os.path.realpath(sys.executable)))
    checkout = Path(netjail.__file__).resolve().parents[1]
    if (checkout / "pyproject.toml").is_file():
        paths.append(str(checkout))
    return [Path(os.path.realpath(p)) for p in dict.fromkeys(paths) if p and os.path.isdir(p)]


def home_paths(home: Path, config_home: Path | None = None) -> list[Path]:
    """The home-level names as paths (XDG_CONFIG_HOME counts as ~/.config; user sites of every Python found)."""
    bases = {".config/": [home / ".config", *([config_home] if config_home else [])]}
    out: list[Path] = []
    for item in (p for p in INVENTORY if p.scope == "home"):
        name = item.name.rstrip("/")
        prefix = next((b for b in bases if name.startswith(b)), None)
        anchors = [base / name[len(prefix) :] for base in bases[prefix]] if prefix else [home / name]
        for anchor in anchors:
            if glob.has_magic(str(anchor)):
                out += [Path(p) for p in sorted(glob.glob(glob.escape(str(home)) + "/" + name))]
                version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
                out.append(Path(str(anchor).replace("python*", version)))
            else:
                out.append(anchor)
    return list(dict.fromkeys(out))


def scan(
    roots: Iterable[Path],
    *,
    allow_git_config: bool = False,
    home: Path | None = None,
    config_home: Path | None = None,
    installation: Iterable[Path] | None = None,
    limit: int | None = None,
) -> Protection:
    """Everything protected under `roots` (absolute, resolved writable paths)."""
    roots = [Path(r) for r in roots]
    limit = limit if limit is not None else _limit_from_environment()
    scanner = _Scanner(roots, allow_git_config, limit)
    outermost = [r for r in dict.fromkeys(roots) if not any(o != r and o in r.parents for o in roots)]
    for root in outermost:
        scanner.root_names(root)
        scanner.walk(root)
    home = Path(os.path.realpath(home or Path.home()))
    config_home = Path(os.path.realpath(config_home)) if config_home else None
    for path in home_paths(home, config_home):
        scanner.absolute(path, may_be_missing=True)
    for path in installation_paths() if installation is None else installation:
        scanner.absolute(Path(path), may_be_missing=False)
    result = scanner.result
    _through_links(result, roots)
    result.read_only = list(dict.fromkeys(result.read_only))
    result.missing = [p for p in dict.fromkeys(result.missing) if p not in set(result.read_only)]
    result.links = list(dict.fromkeys(result.links))
    return result


def _through_links(result: Protection, roots: list[Path]) -> None:
    """A protected path reached through a symlink inside a writable root (`.vscode -> ../shared/vscode`, a
    dotfiles `.envrc`): a link cannot be a mount point (the bind would land wherever it points, or nowhere), and
    the command could replace it. So its target is protected in its place — read-only where it exists, watched where
    it does not — and the link itself is kept in `links`: restored by the end of the run if the run replaced it."""
    read_only: list[Path] = []
    missing: list[Path] = []
    for path, kept in [*((p, read_only) for p in result.read_only), *((p, missing) for p in result.missing)]:
        link = _first_link(path, roots)
        if link is None:
            kept.append(path)
            continue
        try:
            result.links.append((link, os.readlink(link)))
        except OSError:
            pass  # gone since the walk: the end of the run treats the name like any missing one
        real = Path(os.path.realpath(path))
        if os.path.lexists(real):
            read_only.append(real)
        elif any(r == real or r in real.parents for r in roots):
            missing.append(real)  # a dangling link into the tree: what it would name is watched
    result.read_only, result.missing = read_only, missing


def _first_link(path: Path, roots: list[Path]) -> Path | None:
    """The first symlink between the deepest writable root holding `path` and `path` itself, if any."""
    holding = [r for r in roots if r == path or r in path.parents]
    if not holding:
        return None
    root = max(holding, key=lambda r: len(r.parts))
    for part in (*(a for a in reversed(path.parents) if root in a.parents), path):
        if part != root and os.path.islink(part):
            return part
    return None


def _limit_from_environment() -> int:
    value = os.environ.get(SCAN_LIMIT_VARIABLE, "")
    return int(value) if value.isdigit() and int(value) > 0 else DEFAULT_SCAN_LIMIT


class _Scanner:
    def __init__(self, roots: list[Path], allow_git_config: bool, limit: int) -> None:
        self.roots = roots
        self.allow_git_config = allow_git_config
        self.limit = limit
        self.result = Protection()
        self.git_dirs: set[str] = set()
        self.patterns: dict[str, list[tuple[str, ...]]] = {}
        for name in tree_names():
            parts = tuple(name.rstrip("/").split("/"))
            self.patterns.setdefault(parts[-1], []).append(parts[:-1])

    def _inside_writable(self, path: Path) -> bool:
        return any(r == path or r in path.parents for r in self.roots)

    def _count(self, root: str) -> None:
        self.result.entries += 1
        if self.result.entries > self.limit:
            raise ScanRefused(
                f"the scan for protected files under {root} passed {self.limit} entries, so netjail cannot "
                f"protect all of it. Fix: narrow filesystem.allowWrite to what the command needs, or raise the "
                f"budget with {SCAN_LIMIT_VARIABLE}=<entries>"
            )

    # -- names in the tree ---------------------------------------------------------------------------------------

    def root_names(self, root: Path) -> None:
        """Names that apply at the root, matched against the root's own path too (root ~/.claude → settings.json);
        a root that is itself inside a protected name is read-only as a whole."""
        parts = root.parts
        for name in tree_names():
            pattern = tuple(name.rstrip("/").split("/"))
            if any(parts[j - len(pattern) : j] == pattern for j in range(len(pattern), len(parts))):
                self.result.read_only.append(root)  # the root lies inside a protected directory
            for i in range(len(pattern), -1, -1):
                if i and tuple(parts[-i:]) != pattern[:i]:
                    continue
                path = root.joinpath(*pattern[i:]) if i < len(pattern) else root
                if os.path.lexists(path):
                    self.result.read_only.append(path)
                else:
                    self.result.missing.append(path)

    def walk(self, root: Path) -> None:
        top = str(root)
        stack = [top]
        while stack:
            directory = stack.pop()
            try:
                iterator = os.scandir(directory)
            except OSError:
                continue  # unreadable: the command cannot write there either
            subdirs: list[str] = []
            is_venv = has_cache_tag = False
            git_parts = (
                0  # HEAD, objects/ and refs/ seen here: a bare repository (git's own test, from d_type)
            )
            with iterator:
                for entry in iterator:
                    self._count(top)
                    name = entry.name
                    if name in BARE_GIT_PARTS and (name == "HEAD" or entry.is_dir(follow_symlinks=False)):
                        git_parts += 1
                    if name == ".git":
                        self.git_entry(Path(entry.path), entry)
                        continue
                    if name in self.patterns:
                        self._match(directory, name, entry.path)
                    if name == "pyvenv.cfg":
                        is_venv = True
                    elif name == "CACHEDIR.TAG":
                        has_cache_tag = True
                    elif entry.is_dir(follow_symlinks=False) and name not in SKIP_NAMES:
                        subdirs.append(name)
            if git_parts == len(
                BARE_GIT_PARTS
            ):  # its hooks run on a local push to it, its config on any command
                self.git_dir(Path(directory), worktree=None)
                continue
            if has_cache_tag and os.path.basename(directory) in CACHE_SKIP:
                continue
            stack += [os.path.join(directory, d) for d in subdirs if not (is_venv and d in VENV_SKIP)]

    def _match(self, directory: str, name: str, path: str) -> None:
        parts = directory.split(os.sep)
        for prefix in self.patterns[name]:
            if not prefix or tuple(parts[-len(prefix) :]) == prefix:
                self.result.read_only.append(Path(path))

    # -- git directories -----------------------------------------------------------------------------------------

    def git_entry(self, dot_git: Path, entry: os.DirEntry | None = None) -> None:
        """A `.git` directory, or a `.git` file (worktree, submodule) whose `gitdir:` line is followed."""
        is_dir = (
            entry.is_dir(follow_symlinks=False) if entry else dot_git.is_dir() and not dot_git.is_symlink()
        )
        if is_dir:
            self.git_dir(dot_git, worktree=dot_git.parent)
            return
        if os.path.islink(dot_git) and os.path.isdir(dot_git):
            # a link to the git directory (a separate-git-dir or dotfiles layout): that directory is protected
            # as any (git keeps working in it), the link kept in place
            try:
                self.result.links.append((dot_git, os.readlink(dot_git)))
            except OSError:
                pass
            self.git_dir(dot_git, worktree=dot_git.parent)
            return
        self.result.read_only.append(dot_git)
        target = _pointer(dot_git, "gitdir:")
        if target is not None:
            self.git_dir(target, worktree=dot_git.parent)

    def git_dir(self, git_dir: Path, worktree: Path | None) -> None:
        real = os.path.realpath(git_dir)
        if real in self.git_dirs or not os.path.isdir(real) or not self._inside_writable(Path(real)):
            return
        self.git_dirs.add(real)
        git_dir = Path(real)
        for name in ("config", "config.worktree", "commondir", "hooks", "info", "gitdir"):
            path = git_dir / name
            if name == "config" and self.allow_git_config:
                continue  # written, then sanitised after the run; what cannot be sanitised stays read-only
            if os.path.lexists(path):
                self.result.read_only.append(path)
            elif name in PLACEHOLDERS:
                kind, content = PLACEHOLDERS[name]
                self.result.placeholders.append(Placeholder(path, kind, content))
                self.result.read_only.append(path)
        common = _pointer(git_dir / "commondir", "")
        if common is not None and common != git_dir:
            self.git_dir(common, worktree=None)
        for config in (git_dir / "config", git_dir / "config.worktree"):
            self._config_targets(config, worktree)
        self._nested_git_dirs(git_dir / "modules", depth=0)
        worktrees = git_dir / "worktrees"
        if worktrees.is_dir():
            for item in _subdirs(worktrees):
                self.git_dir(item, worktree=_pointer(item / "gitdir", "", parent=True))

    def _nested_git_dirs(self, directory: Path, depth: int) -> None:
        """Submodule git directories under modules/ (names may hold '/': any directory with a HEAD)."""
        if depth > 32 or not directory.is_dir():
            return
        for item in _subdirs(directory):
            self._count(str(directory))
            if (item / "HEAD").is_file():
                self.git_dir(item, worktree=None)
            else:
                self._nested_git_dirs(item, depth + 1)

    def _config_targets(self, config: Path, worktree: Path | None) -> None:
        """core.hooksPath and include paths a git config names, when they lie inside a writable root."""
        try:
            entries = gitconfig.parse(config.read_text(errors="replace"))
        except (OSError, gitconfig.Unreadable):
            return
        for entry in entries:
            if not entry.value:
                continue
            if (entry.section, entry.key) == ("core", "hookspath"):
                base = worktree
            elif entry.key == "path" and entry.section in ("include", "includeif"):
                base = config.parent
            else:
                continue
            value = os.path.expanduser(entry.value)
            if not os.path.isabs(value) and base is None:
                continue
            self.absolute(Path(os.path.normpath(os.path.join(base or "/", value))), may_be_missing=True)

    # -- absolute paths: home-level names, netjail's installation, git config targets ------------------------------

    def absolute(self, path: Path, *, may_be_missing: bool) -> None:
        if self._inside_writable(path):
            if os.path.lexists(path):
                self.result.read_only.append(path)
            elif may_be_missing:
                self.result.missing.append(path)
        # a writable root inside a protected path is read-only as a whole
        self.result.read_only += [r for r in self.roots if path in r.parents and os.path.lexists(path)]


def _subdirs(directory: Path) -> list[Path]:
    try:
        with os.scandir(directory) as it:
            return [Path(e.path) for e in it if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []


def _pointer(path: Path, prefix: str, *, parent: bool = False) -> Path | None:
    """The path a git pointer file names (`gitdir: X` in a .git file, X in commondir), resolved."""
    try:
        text = path.read_text(errors="replace").strip()
    except OSError:
        return None
    if not text.startswith(prefix):
        return None
    target = Path(os.path.realpath(path.parent / text[len(prefix) :].strip()))
    return target.parent if parent else target


def render_inventory() -> str:
    """The docs/security.md section body: every protected name, why, and how it is protected."""
    how = {
        "tree": "read-only at any depth under a writable root (and when the root is inside it); watched when missing",
        "git": "read-only in every git directory; placeholder when missing",
        "home": "read-only when a writable root holds it; watched when missing",
    }
    titles = {
        "tree": "In the tree (any depth)",
        "git": "In every git directory",
        "home": "In the home directory",
    }
    lines: list[str] = []
    for scope in ("tree", "git", "home"):
        lines += [f"**{titles[scope]}** — {how[scope]}.", "", "| name | runs it, when |", "|---|---|"]
        prefix = "~/" if scope == "home" else (".git/" if scope == "git" else "")
        lines += [f"| `{prefix}{p.name}` | {p.why} |" for p in INVENTORY if p.scope == scope]
        lines.append("")
    lines += ["**Considered and left writable**", "", "| name | why not |", "|---|---|"]
    lines += [f"| `{name}` | {why} |" for name, why in NOT_PROTECTED]
    return "\n".join(lines) + "\n"
