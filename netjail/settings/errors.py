"""How a settings file is refused: one line naming the file, the field (as a JSON path), the problem and the
fix. Validators raise `Problem`; the loader turns it into a `SettingsError`."""

from __future__ import annotations

from netjail.utils.text import safe_text


class SettingsError(Exception):
    """A settings file netjail will not run with. str() is one line per problem: file, field, problem and fix.
    `file`, `field`, `problem` and `fix` are the first problem's; `problems` holds every one, the first first."""

    def __init__(self, file: str, field: str, problem: str, fix: str) -> None:
        self.file, self.field = file, field
        self.problem, self.fix = problem.rstrip(". "), fix.rstrip(". ")
        self.problems: list[SettingsError] = [self]
        super().__init__(self._line())

    def _line(self) -> str:
        return f"{safe_text(self.file)}: {self.field}: {self.problem}. Fix: {self.fix}"

    @classmethod
    def every(cls, errors: list[SettingsError]) -> SettingsError:
        """One error that reports all of `errors` (at least one), one line each."""
        first = errors[0]
        combined = cls(first.file, first.field, first.problem, first.fix)
        combined.problems = list(errors)
        combined.args = ("\n".join(e._line() for e in errors),)
        return combined

    def __str__(self) -> str:
        return str(self.args[0])


class Problem(ValueError):
    """Raised by validators: `at` extends the field path (a list index or a dict key) below the field."""

    def __init__(self, problem: str, fix: str, at: tuple[str | int, ...] = ()) -> None:
        super().__init__(problem)
        self.problem, self.fix, self.at = problem, fix, at


def split_sentence(message: str) -> tuple[str, str]:
    """'What is wrong; what to do.' -> (problem, fix). A '; ' inside a quoted value does not split."""
    quote = None
    i = 0
    while i < len(message):
        ch = message[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "'\"" and (i == 0 or not message[i - 1].isalnum()):  # not an apostrophe
            quote = ch
        elif message.startswith("; ", i):
            return message[:i], message[i + 2 :].rstrip(".")
        i += 1
    return message.rstrip("."), "correct the entry as described (docs/domain-rules.md lists the forms)"


def json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "an array"
    return "an object"
