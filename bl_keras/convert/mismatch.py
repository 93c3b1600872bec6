"""The error of a checkpoint that does not fit the architecture: a short summary, full lists on
request.

A wrong `--arch` leaves hundreds of tensors missing or extra; the summary gives the counts, the
first few names of each kind, the architectures the checkpoint does fit (`fit`), and how to get
every name (`write_report`).
"""

import os

SHOWN_PER_KIND = 5
MAX_LINE = 150  # summary lines are cut to this; the report keeps whole names
PYTHON_HINT = ("For the full lists, pass mismatch_report=PATH to from_checkpoint / from_official "
               "(command line: --mismatch_report PATH).")


def _mis_shaped(name, got, want):
    return f"{name} {tuple(got)} (expected {tuple(want)})"


def _clip(line, width=MAX_LINE):
    return line if len(line) <= width else line[:width - 3] + "..."


def _listing(kind, items, limit):
    """`  kind (N): first` and the next ones aligned under it; `(M more)` for the rest."""
    head = f"  {kind} ({len(items)}): "
    shown = items if limit is None else items[:limit]
    lines = [head + shown[0]] + [" " * len(head) + item for item in shown[1:]]
    if len(items) > len(shown):
        lines.append(" " * len(head) + f"({len(items) - len(shown)} more)")
    return lines


class CheckpointMismatchError(ValueError):
    """The tensors given do not fit the architecture.

    Attributes: `missing` (names the model needs), `unexpected` (names it has no place for),
    `mismatched` ((name, checkpoint shape, model shape)), `suggestion` (a `fit.Suggestion`, or
    None), `report_path` (where the full lists were written, if asked).
    """

    def __init__(self, missing=(), unexpected=(), mismatched=(), suggestion=None,
                 expected_count=None, given_count=None):
        self.missing, self.unexpected = list(missing), list(unexpected)
        self.mismatched = list(mismatched)
        self.suggestion = suggestion
        self.expected_count, self.given_count = expected_count, given_count
        self.report_path = self.report_error = None
        super().__init__(self.missing, self.unexpected, self.mismatched)

    def _kinds(self):
        return [("missing", self.missing), ("unexpected", self.unexpected),
                ("mis-shaped", [_mis_shaped(*m) for m in self.mismatched])]

    def _header(self):
        counts = ""
        if self.expected_count is not None and self.given_count is not None:
            counts = (f" the model takes {self.expected_count} tensors, the checkpoint has "
                      f"{self.given_count} (BatchNorm counters aside)")
        return f"Checkpoint does not match the architecture:{counts}"

    def _listings(self, limit):
        lines = []
        for kind, items in self._kinds():
            if items:
                lines += _listing(kind, items, limit)
        return lines

    def _suggestion_lines(self):
        if self.suggestion is None:
            return []
        if self.suggestion.exact:
            return ["Fits this checkpoint exactly:"] + [
                f"  {c.describe()}" for c in self.suggestion.exact]
        if not self.suggestion.closest:
            return ["No convertible architecture has any of these tensors."]
        return ["No convertible architecture fits this checkpoint exactly; the closest:"] + [
            f"  {c.describe()}: {c.matching} of the checkpoint's {c.given} tensors match "
            f"(the model takes {c.expected})" for c in self.suggestion.closest]

    def summary(self, full_list_hint=PYTHON_HINT):
        """Counts, the first names of each kind, the fitting architectures, where the rest is."""
        listings = [_clip(line) for line in self._listings(SHOWN_PER_KIND)]
        lines = [self._header()] + listings + self._suggestion_lines()
        if self.report_path:
            lines.append(f"The full lists are in {self.report_path}.")
        elif self.report_error:
            lines.append(f"Could not write the full lists to {self.report_error}.")
        elif any(len(items) > SHOWN_PER_KIND for _, items in self._kinds()):
            lines.append(full_list_hint)
        return "\n".join(lines)

    def report(self):
        """The summary's header and suggestions with every name of every kind."""
        return "\n".join([self._header()] + self._listings(None) + self._suggestion_lines()) + "\n"

    def write_report(self, path):
        """Write `report()` to `path`; a failure is noted in the summary instead of raised, so
        the mismatch stays the error the caller sees."""
        try:
            parent = os.path.dirname(os.path.abspath(path))
            os.makedirs(parent, exist_ok=True)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(self.report())
            self.report_path = path
        except OSError as err:
            self.report_error = f"{path}: {err.strerror or err}"

    def __str__(self):
        return self.summary()
