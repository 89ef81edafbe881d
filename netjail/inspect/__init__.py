"""What answers "what left, and why": one module per view, each used by its command in `netjail.cli` —
`flows` and `tables` (netjail flows), `audit` and `audit_html`, `why`, `learn`, `har`, `summary` (after a run),
`explain`, `doctor` and `config`. Their functions share names (`render`), so the package exports the modules."""

__all__ = [
    "audit",
    "audit_html",
    "config",
    "doctor",
    "explain",
    "flows",
    "har",
    "learn",
    "summary",
    "tables",
    "why",
]
