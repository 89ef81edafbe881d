"""The supervisor: the backend registry, the runner (set-up and order), the spec it asks of the jail and the proxy,
the wait (signals, exit status), the journal and end of a run, the sweep of killed runs."""

from netjail.utils.lazy import lazy_exports

__all__, __getattr__ = lazy_exports(
    __name__,
    {
        "backends": ("current_jail",),
        "outcome": ("Outcome", "RunFailed"),
        "runner": ("command_argv", "run"),
        "spec": ("build_spec",),
        "sweep": ("sweep_abandoned",),
    },
)
