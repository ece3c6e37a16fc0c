"""The Markdown table of a "plain vs ours" benchmark measured in alternating rounds."""

from __future__ import annotations

import statistics


def paired_table(
    results: dict[str, dict[str, list[float]]],
    plain_title: str,
    ours_title: str,
    labels: dict[str, str],
    lower_is_better: frozenset[str] = frozenset(),
) -> str:
    """Medians with (min-max), the ratio of medians and the median of per-round ratios.

    ``results[variant][measure]`` holds one figure per round for ``"plain"`` and ``"ours"``.
    Ratios read "ours / plain" for rates; measures in ``lower_is_better`` are inverted so
    every ratio reads "ours is as fast as".
    """
    lines = [
        f"| measure | {plain_title} | {ours_title} | ratio of medians | median round ratio |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for key, label in labels.items():
        plain, ours = results["plain"][key], results["ours"][key]
        cells = [
            f"{statistics.median(v):,.0f} ({min(v):,.0f}-{max(v):,.0f})" for v in (plain, ours)
        ]
        if key in lower_is_better:
            plain, ours = [1 / v for v in plain], [1 / v for v in ours]
        ratio = statistics.median(ours) / statistics.median(plain)
        paired = statistics.median(o / p for o, p in zip(ours, plain, strict=True))
        lines.append(f"| {label} | {cells[0]} | {cells[1]} | {ratio:.2f} | {paired:.2f} |")
    return "\n".join(lines) + "\n"
