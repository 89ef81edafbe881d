"""The jail: the platform interface (`spec`), the path rules every backend applies (`paths`), the command's
environment (`environment`, `scrub`), protected names and what guards them during and after a run (`protected`,
`persistence`, `watch`, `quarantine`, `newrepos`, `gitconfig`, `symlinks`); the backends are `jail.linux` (bwrap)
and `jail.macos` (seatbelt), chosen by `netjail.run.backends`."""

from netjail.utils.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "spec": ("PROXY_PORT", "Jail", "JailError", "JailSpec", "Launched", "PathRules"),
        "paths": ("path_rules",),
        "environment": ("inherited_environment", "jail_environment"),
        "scrub": ("Scrubbed", "scrub_environment"),
        "protected": ("INVENTORY", "ScanRefused", "create_placeholders", "remove_placeholders", "scan"),
        "persistence": ("missing_protected_paths",),
        "watch": ("WatchUnavailable", "Watcher"),
        "newrepos": ("GitDirs", "ScanTooLarge", "find_git_dirs", "sanitise_git_dir"),
        "gitconfig": ("sanitize",),
        "symlinks": ("first_planted_link", "open_no_follow"),
    },
)
