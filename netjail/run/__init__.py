"""The supervisor: the backend registry, the runner (set-up, signals, exit status), the journal and end of a run,
the sweep of killed runs."""

from netjail.utils.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "backends": ("current_jail",),
        "runner": ("Outcome", "RunFailed", "build_spec", "command_argv", "run"),
        "sweep": ("sweep_abandoned",),
    },
)
