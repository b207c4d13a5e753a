"""One row of the verification table: :class:`ClaimResult`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from simulations.verify.claims.verdicts import VERDICTS

__all__ = ["ClaimResult"]


@dataclass(frozen=True)
class ClaimResult:
    """One row of the verification table.

    ``prediction`` and ``measurement`` are short texts; ``prediction_value`` and
    ``measurement_value`` their numbers where there is one (a probability bound is given by its
    log10 in ``details``); ``interval`` the 95% interval of the measurement (or the range over
    paths for a pathwise claim); ``details`` every number behind the row.
    """

    scenario: str
    claim: str
    statement: str
    prediction: str
    measurement: str
    interval: tuple[float, float] | None
    verdict: str
    reason: str
    prediction_value: float | None = None
    measurement_value: float | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")

    def to_dict(self) -> dict[str, Any]:
        """Every field as a dict (``interval`` a tuple or None)."""
        return asdict(self)

    def describe(self) -> str:
        """The row as one line of text: scenario, claim, verdict, prediction, measurement and
        the reason."""
        return (f"{self.scenario} {self.claim}: {self.verdict} (prediction {self.prediction}; "
                f"measured {self.measurement}): {self.reason}")
