"""Draw bench/peers.py's figures: per-case time by system, SQLite and PostgreSQL side by side.

Reads the JSON line peers.py ends with (from a file, or stdin with `-`; the last line whose
"bench" is "peers" counts) and writes a PNG: one horizontal bar per system at the median
per-case time, a whisker to the p99, on a log scale, with the ratio to redress beside it. Eight
one-row commits, the least a system that commits every step can take, are the last bar; a dashed
line marks each target's per-case time for redress (SpiffWorkflow's ÷ 5, Prefect's ÷ 300), so a
line left of that bar is a target no such system can meet.

    python bench/peers.py | tee var/bench/peers.txt
    python bench/plot.py var/bench/peers.txt -o docs/bench-peers.png

Needs matplotlib (the bench extra); draws with the Agg backend, no display needed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ORDER = ("floor", "redress", "spiff", "prefect", "commits")
LABELS = {
    "floor": "floor (bare SQL)",
    "redress": "redress",
    "spiff": "SpiffWorkflow\n+ persistence",
    "prefect": "Prefect,\nflow run per step",
    "commits": "8 one-row commits\n(bound for any system)",
}
COLOURS = {
    "floor": "#9e9e9e",
    "redress": "#1f6fb2",
    "spiff": "#e08a1e",
    "prefect": "#7b3fa0",
    "commits": "#d0d0d0",
}
TARGET_LINES = {"spiff_over_redress": "5× Spiff", "prefect_over_redress": "300× Prefect"}


def load(source: str) -> dict[str, Any]:
    text = sys.stdin.read() if source == "-" else Path(source).read_text()
    found: dict[str, Any] | None = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if obj.get("bench") == "peers":
                found = obj
    if found is None:
        raise SystemExit(f"no JSON line from bench/peers.py in {source}")
    return found


def draw(figures: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    backends = [b for b in ("sqlite", "postgresql") if figures.get(b)]
    fig, axes = plt.subplots(
        1, len(backends), figsize=(6.2 * len(backends), 4.4), sharex=True, squeeze=False
    )
    lo, hi = float("inf"), 0.0
    for ax, key in zip(axes[0], backends, strict=True):
        r = figures[key]
        systems = r["systems"]
        names = [n for n in ORDER if n in systems]
        base = systems["redress"]["p50_ms"]
        y = list(range(len(names)))[::-1]
        med = [systems[n]["p50_ms"] for n in names]
        p99 = [systems[n]["p99_ms"] for n in names]
        lo, hi = min(lo, *med), max(hi, *p99)
        ax.barh(
            y,
            med,
            color=[COLOURS[n] for n in names],
            xerr=[[0] * len(names), [p - m for p, m in zip(p99, med, strict=True)]],
            error_kw={"elinewidth": 1, "capsize": 3, "ecolor": "#444"},
            height=0.6,
        )
        for yi, n, m in zip(y, names, med, strict=True):
            ratio = m / base
            tag = "" if n == "redress" else f"  {ratio:,.2f}× redress"
            ax.text(m * 1.08, yi + 0.22, f"{m:,.2f} ms{tag}", va="bottom", fontsize=8, color="#222")
        # The targets' lines, labelled under the last bar, clear of the bars' own labels.
        for i, (key, tag) in enumerate(TARGET_LINES.items()):
            w = (r.get("within_reach") or {}).get(key)
            if w is None:
                continue
            x = w["redress_at_most_ms"]
            lo = min(lo, x)
            ax.axvline(x, color="#c0392b", ls="--", lw=0.8)
            ax.text(x * 1.06, -0.62 - 0.3 * i, f"{tag}: ≤ {x:,.2f} ms", fontsize=7, color="#c0392b")
        ax.set_ylim(-1.05, len(names) - 0.45)
        ax.set_yticks(y, [f"{LABELS[n]}  (n={systems[n]['n']})" for n in names], fontsize=8)
        ax.set_xscale("log")
        ax.set_title(r["backend"].split(" (")[0], fontsize=10)
        ax.grid(axis="x", which="both", alpha=0.25)
        ax.set_xlabel(
            "time per case, ms (8 steps; bar = median, whisker = p99; log scale)", fontsize=8
        )
    for ax in axes[0]:
        ax.set_xlim(lo / 2, hi * 6)
    machine = figures.get("machine", {})
    fig.suptitle(
        "Objection main path, submit → … → close: redress vs SpiffWorkflow vs Prefect vs bare SQL",
        fontsize=10,
    )
    fig.text(
        0.01,
        0.01,
        f"{machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, Python "
        f"{machine.get('python', '?')}; {figures['cases']} cases each, Prefect "
        f"{figures['prefect_cases']}; bench/peers.py",
        fontsize=7,
        color="#555",
    )
    fig.tight_layout(rect=(0, 0.03, 1, 0.95))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    ap.add_argument("source", help="peers.py's output or its JSON line (a file, or - for stdin)")
    ap.add_argument("-o", "--out", type=Path, default=Path("docs/bench-peers.png"))
    args = ap.parse_args(argv)
    draw(load(args.source), args.out)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
