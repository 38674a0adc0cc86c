"""Reference accuracies (--reference FILE.csv): reading the CSV and the columns beside the
measured cells (reference value, difference in points and in seed standard deviations)."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from .labels import Method
from study.run import DEFAULT_VIS_INIT, normalized_dataset
from .numbers import Summary, parse_metric_value


REFERENCE_COLUMNS = ("dataset", "init", "shots")  # plus the value column: the --keyword


@dataclass(frozen=True)
class Reference:
    """Published (or other) numbers to compare with: (dataset, init, vis init, tag, shots) ->
    value, dataset normalised ('Oxford Pets', 'OxfordPets' and 'oxford_pets' are one)."""

    name: str
    path: Path
    values: dict[tuple[str, str, str, str, int], float]

    def value(self, method: Method, shots: int, dataset: str) -> float | None:
        if method.init is None:
            return None
        key = (normalized_dataset(dataset), method.init, method.vis_init or DEFAULT_VIS_INIT,
               method.tag, shots)
        return self.values.get(key)


class ReferenceDataError(ValueError):
    """A --reference file that cannot be used (one line: what is wrong and the fix).
    (Not ``ReferenceError``: that is Python's own, for dead weak references.)"""


def load_reference(spec: str, keyword: str) -> Reference:
    """``FILE.csv`` or ``NAME=FILE.csv``; columns dataset, init, shots and the metric (the
    --keyword, e.g. accuracy); optional vis_init (default random) and tag (default none).
    Lines starting with '#' are comments; other columns are ignored."""
    name, separator, file_name = spec.partition("=")
    path = Path(file_name if separator else spec)
    name = name if separator else path.stem
    if path.exists() and not path.is_file():  # a folder, or a FIFO that would block the read
        raise ReferenceDataError(f"--reference {spec}: {path} is not a regular file; give a "
                                 "CSV file.")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise ReferenceDataError(f"--reference {spec}: cannot read {path} ({error.strerror}).")
    except UnicodeDecodeError as error:
        raise ReferenceDataError(f"--reference {spec}: {path} is not UTF-8 text (byte "
                                 f"{error.start}); give a CSV file.") from None
    reader = csv.DictReader(line for line in lines if line.strip() and not line.startswith("#"))
    missing = [column for column in REFERENCE_COLUMNS + (keyword,)
               if column not in (reader.fieldnames or [])]
    if missing:
        raise ReferenceDataError(
            f"--reference {path}: missing column(s) {', '.join(missing)}; a reference CSV has "
            f"columns {', '.join(REFERENCE_COLUMNS)}, {keyword} (optional: vis_init, tag).")
    values: dict[tuple[str, str, str, str, int], float] = {}
    for number, row in enumerate(reader, start=2):
        shots_text, value_text = (row.get("shots") or "").strip(), row.get(keyword) or ""
        value = parse_metric_value(value_text)
        if not shots_text.isdigit() or value is None:
            raise ReferenceDataError(
                f"--reference {path}: row {number} needs whole shots and a numeric {keyword} "
                f"(got {shots_text!r}, {value_text!r}).")
        key = (normalized_dataset(row["dataset"]), row["init"].strip(),
               (row.get("vis_init") or "").strip() or DEFAULT_VIS_INIT,
               (row.get("tag") or "").strip(), int(shots_text))
        if key in values:
            raise ReferenceDataError(f"--reference {path}: row {number} repeats {key[0]} "
                                     f"{key[1]} {key[4]} shots; give each setting once.")
        values[key] = value
    return Reference(name, path, values)


def reference_cells(summary: Summary | None, reference: float | None) -> list[str]:
    """Reference value, measured - reference in points and in seed standard deviations."""
    if reference is None:
        return ["-", "-", "-"]
    if summary is None:
        return [f"{reference:.2f}", "-", "-"]
    difference = summary.mean - reference
    in_std = f"{difference / summary.std:+.2f}" if summary.std > 0 else "-"
    return [f"{reference:.2f}", f"{difference:+.2f}", in_std]
