"""Turning a raw similarity into a number that means something: a percentile among known pairs.

A raw blend of cosines has no intuitive scale ("0.37 — is that good?"). Sonance instead shows where a
pair stands among all pairs it knows: 80 means "more alike than 80% of pairs". The calibration keeps a
compressed sorted sample of raw pair scores (a quantile grid) plus the component statistics used to
z-score the cosines, so a persisted calibration reproduces the same raw -> score mapping later.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from core.errors import InvalidInput

# (upper bound of the percentile band, label), checked in order.
LABELS: tuple[tuple[float, str], ...] = (
    (10.0, "opposites"),
    (30.0, "different wavelengths"),
    (55.0, "some common ground"),
    (80.0, "in tune"),
    (95.0, "great match"),
    (float("inf"), "kindred spirits"),
)

GRID_SIZE = 1001  # quantiles kept: 0.0%, 0.1%, ..., 100.0%


def label_for(score: float) -> str:
    """The words for a 0-100 calibrated score, from "opposites" to "kindred spirits"."""
    for bound, label in LABELS:
        if score < bound:
            return label
    return LABELS[-1][1]


TIE_TOLERANCE = 1e-6  # relative: raw scores closer than this are the same score


@dataclass(frozen=True)
class Calibration:
    """Raw -> 0..100 mapping plus the z-score statistics of each component cosine.

    `quantiles` is non-decreasing; `component_mean/std` are in the order (overlap, tags, latent).
    """

    quantiles: np.ndarray
    component_mean: tuple[float, float, float]
    component_std: tuple[float, float, float]
    params_token: str
    sample_size: int
    extra: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_sample(cls, raw: np.ndarray, component_mean: tuple[float, float, float],
                    component_std: tuple[float, float, float], params_token: str) -> Calibration:
        """Compress a sample of raw pair scores into a quantile grid (empty sample: identity-ish)."""
        raw = np.asarray(raw, dtype=np.float64)
        raw = raw[np.isfinite(raw)]
        if raw.size == 0:
            # No pairs known yet: a neutral grid centred on 0 so scores stay defined (50 = average).
            quantiles = np.linspace(-3.0, 3.0, GRID_SIZE)
        else:
            quantiles = np.quantile(raw, np.linspace(0.0, 1.0, GRID_SIZE))
        return cls(np.maximum.accumulate(quantiles), component_mean, component_std, params_token, int(raw.size))

    def score(self, raw: float | np.ndarray) -> np.ndarray | float:
        """Percentile (0..100) of `raw` among the sampled pairs; monotone non-decreasing in `raw`."""
        uniq, pos = self._knots
        if uniq.size == 1:
            out = np.where(np.asarray(raw) > uniq[0], 100.0, np.where(np.asarray(raw) < uniq[0], 0.0, 50.0))
        else:
            out = np.interp(raw, uniq, pos, left=0.0, right=100.0)
        return float(out) if np.ndim(out) == 0 else out

    @cached_property
    def _knots(self) -> tuple[np.ndarray, np.ndarray]:
        # Ties in the grid (many equal raw scores) are merged to the middle of their band, which keeps
        # np.interp well-defined and the mapping monotone. "Equal" allows for floating-point noise:
        # pairs with nothing in common all get the same raw score up to rounding (float32 matrix
        # products vs float64 pair scoring), and must not be spread over a band of percentiles.
        grid = np.linspace(0.0, 100.0, self.quantiles.size)
        q = np.asarray(self.quantiles, dtype=np.float64)
        tolerance = TIE_TOLERANCE * max(1.0, float(np.abs(q).max()))
        starts_group = np.concatenate(([True], np.diff(q) > tolerance))
        group = np.cumsum(starts_group) - 1
        position = np.bincount(group, weights=grid) / np.bincount(group)
        lows = q[starts_group]
        highs = q[np.concatenate((starts_group[1:], [True]))]
        # Each group spans [its lowest, its highest] value at one position: a flat segment, so every
        # raw score inside the band reads the same percentile.
        xs = np.column_stack((lows, highs)).ravel()
        ys = np.repeat(position, 2)
        keep = np.concatenate(([True], np.diff(xs) > 0))
        return xs[keep], ys[keep]

    # --- persistence -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, object]:
        return {
            "format": 1,
            "params_token": self.params_token,
            "sample_size": self.sample_size,
            "component_mean": list(self.component_mean),
            "component_std": list(self.component_std),
            "quantiles": [float(x) for x in self.quantiles],
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> Calibration:
        try:
            if data.get("format") != 1:
                raise ValueError(f"unknown format {data.get('format')!r}")
            quantiles = np.asarray(data["quantiles"], dtype=np.float64)
            mean = tuple(float(x) for x in data["component_mean"])  # type: ignore[union-attr]
            std = tuple(float(x) for x in data["component_std"])  # type: ignore[union-attr]
            if quantiles.ndim != 1 or quantiles.size < 2 or len(mean) != 3 or len(std) != 3:
                raise ValueError("wrong shapes")
            if np.any(np.diff(quantiles) < 0) or not np.all(np.isfinite(quantiles)):
                raise ValueError("quantiles must be finite and non-decreasing")
            return cls(quantiles, mean, std, str(data["params_token"]),  # type: ignore[arg-type]
                       int(data["sample_size"]), dict(data.get("extra") or {}))  # type: ignore[call-overload]
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput("The saved compatibility calibration is unreadable.", detail=str(exc)) from None

    def save(self, path: Path | str) -> None:
        """Write JSON atomically (temp file + rename) so a reader never sees half a file."""
        path = Path(path)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_dict()), encoding="utf-8")
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path | str) -> Calibration:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InvalidInput("The saved compatibility calibration is unreadable.", detail=str(exc)) from None
        return cls.from_dict(data)
