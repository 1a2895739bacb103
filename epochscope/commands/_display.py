"""Human-readable terminal rendering of a bundle summary (rich tables)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def print_summary(data: dict[str, Any]) -> None:
    """Print `bundle_summary` output; every user string goes through Text (no markup)."""
    console = Console(highlight=False, soft_wrap=True)
    ctx = data.get("context") or {}
    env = ctx.get("environment") or {}
    for finding in data.get("damage") or []:
        console.print(Text(f"DAMAGED (left out): {finding}", style="bold red"))
    console.print(Text(f"{data['name']}  ({data['status']})", style="bold"))
    console.print(Text(f"path: {data['path']}"))
    git = env.get("git") or {}
    facts = [
        ("started", env.get("started")),
        ("host", env.get("host")),
        ("device", env.get("device")),
        ("versions", ", ".join(f"{k} {env[k]}" for k in ("python", "torch", "numpy", "h5py") if env.get(k))),
        ("git", f"{git.get('commit', '')[:12]}{' (dirty)' if git.get('dirty') else ''}" if git else None),
        ("seeds", ctx.get("seeds")),
        ("sessions", len(data.get("sessions") or [])),
    ]
    for key, value in facts:
        if value not in (None, "", {}):
            console.print(Text(f"{key}: {value}"))
    config = ctx.get("config") or {}
    if config:
        console.print(Text("config: " + ", ".join(f"{k}={v}" for k, v in sorted(config.items()))))

    if data["series"]:
        table = Table(title="metrics", title_justify="left")
        for col in ("series", "points", "epochs", "last", "min", "max"):
            table.add_column(col, justify="left" if col == "series" else "right")
        for name, s in sorted(data["series"].items()):
            table.add_row(Text(name), str(s["points"]), f"{_fmt(s['first_epoch'])}..{_fmt(s['last_epoch'])}",
                          _fmt(s["last_value"]), _fmt(s["min"]), _fmt(s["max"]))
        console.print(table)
    else:
        console.print("metrics: none")
    ck = data["checkpoints"]
    if ck["count"]:
        eps = ck["epochs"]
        shown = ", ".join(map(str, eps[:8])) + (" ..." if len(eps) > 8 else "")
        console.print(Text(f"checkpoints: {ck['count']} (epochs {shown}; last {eps[-1]})"))
    else:
        console.print("checkpoints: none")
    if data["artifacts"]:
        table = Table(title="artifacts", title_justify="left")
        for col in ("analyzer", "version", "epochs", "arrays"):
            table.add_column(col)
        for name, a in sorted(data["artifacts"].items()):
            table.add_row(Text(name), a["version"], str(a["epochs"]), Text(", ".join(a["arrays"] + a["summary"])))
        console.print(table)
    else:
        console.print("artifacts: none")
    events = data["events"]
    if events:
        kinds: dict[str, int] = {}
        for e in events:
            kinds[e["kind"]] = kinds.get(e["kind"], 0) + 1
        console.print(Text(f"events: {len(events)} (" + ", ".join(f"{k} x{n}" for k, n in kinds.items()) + ")"))
        for e in events[:10]:
            console.print(Text(f"  epoch {e['epoch']}: {e['kind']}: {e['message']}"))
        if len(events) > 10:
            console.print(f"  ... {len(events) - 10} more (use --json)")
    else:
        console.print("events: none")
    if data["tables"]:
        console.print(Text("tables: " + "; ".join(f"{n} ({', '.join(c)})" for n, c in data["tables"].items())))
    if data["journal_segments"]:
        console.print(f"unconsolidated journal segments: {data['journal_segments']}")
