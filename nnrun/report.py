"""report.html: one self-contained page per run folder (no network needed to view it).

write_report() reads only the run folder's files (summary.json, config.yaml, metrics.json,
evaluation-*.json, plots/*.png) and embeds every picture as a base64 data URI. Train and
evaluate both call it, so the page always shows everything the folder holds.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterable
from html import escape
from pathlib import Path
from typing import Any

from nnrun import fmt
from nnrun.fileio import OutsideFolder, TooLarge, check_inside, read_limited, write_text
from nnrun.runs import read_diagnostics, read_json_or, read_rows, read_summary
from nnrun.status import status_tone

SPLIT_ORDER = ["test", "validation", "train"]
# What a run folder's files may add to the page: a picture is a few hundred KiB, a resolved config
# a few KiB; a larger file (or a link to /dev/zero) is left out.
MAX_PICTURE_BYTES = 16 << 20
MAX_CONFIG_BYTES = 1 << 20

CSS = """
:root{--bg:#f5f7fa;--card:#fff;--text:#1f2933;--muted:#616e7c;--line:#e4e7eb;--accent:#0072b2;
--ok:#0f7b4f;--ok-bg:#e3f7ee;--warn:#8a5a00;--warn-bg:#fff4d6;--bad:#b42318;--bad-bg:#fde8e7}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--text);line-height:1.5;font-size:15px;
font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans",sans-serif}
header{background:linear-gradient(135deg,#0b3b5c,#0072b2);color:#fff;padding:28px 0 22px}
.wrap{max-width:1120px;margin:0 auto;padding:0 24px}
header h1{margin:0 0 4px;font-size:28px;font-weight:650;letter-spacing:-.01em}
header .sub{opacity:.85;font-size:14px}
header .sub code{color:#fff;background:rgba(255,255,255,.14);padding:1px 6px;border-radius:4px}
.headline{display:flex;flex-wrap:wrap;gap:12px;margin-top:18px;align-items:center}
.big{font-size:15px;background:rgba(255,255,255,.14);border-radius:10px;padding:8px 14px}
.big b{font-size:22px;display:block;line-height:1.2}
.badge{display:inline-block;padding:2px 10px;border-radius:999px;font-size:13px;font-weight:600;
background:#eef2f6;color:var(--muted)}
.badge.ok{background:var(--ok-bg);color:var(--ok)}.badge.warn{background:var(--warn-bg);color:var(--warn)}
.badge.bad{background:var(--bad-bg);color:var(--bad)}
nav{position:sticky;top:0;z-index:5;background:rgba(255,255,255,.94);backdrop-filter:blur(6px);
border-bottom:1px solid var(--line)}
nav .wrap{display:flex;gap:4px;flex-wrap:wrap;padding-top:8px;padding-bottom:8px}
nav a{color:var(--muted);text-decoration:none;font-size:14px;padding:4px 10px;border-radius:6px}
nav a:hover{background:#eef2f6;color:var(--text)}
main{padding:8px 0 40px}
section{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:20px 24px;
margin:20px 0;box-shadow:0 1px 2px rgba(16,24,40,.04)}
h2{font-size:20px;margin:0 0 14px;font-weight:650}
h3{font-size:16px;margin:22px 0 10px;font-weight:600;color:#323f4b}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:12px;margin-bottom:8px}
.card{border:1px solid var(--line);border-radius:10px;padding:10px 14px;background:#fbfcfd}
.card .k{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted)}
.card .v{font-size:20px;font-weight:650;font-variant-numeric:tabular-nums}
.table-wrap{overflow-x:auto;margin:6px 0 10px}
table{border-collapse:collapse;font-size:13.5px;font-variant-numeric:tabular-nums}
th,td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap}
th{background:#f3f5f8;font-weight:600;color:#323f4b;position:sticky;top:0}
td.l,th.l{text-align:left}
tbody tr:hover td{background:#f8fafc}
tr.avg td{font-weight:600;background:#fafbfc}
table.kv td:first-child{color:var(--muted);text-align:left}
table.kv td{text-align:left;white-space:normal}
table.cm td{text-align:center;min-width:30px;padding:5px 6px;border:1px solid #fff}
table.cm th{padding:5px 6px}
table.cm th{text-align:center}
table.cm td.diag{font-weight:700}
.epochs{max-height:460px;overflow:auto;border:1px solid var(--line);border-radius:8px}
.epochs table{width:100%}
tr.best td{background:#e8f3fb}
figure{margin:14px 0;text-align:center}
figure img{max-width:100%;height:auto;border:1px solid var(--line);border-radius:8px;background:#fff}
figcaption{font-size:13px;color:var(--muted);margin-top:4px}
figure.small img{max-width:min(100%,640px)}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:8px 20px;align-items:start}
pre{background:#0f1720;color:#e4e7eb;padding:14px 16px;border-radius:8px;overflow:auto;font-size:13px;
line-height:1.45;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace}
.muted{color:var(--muted)}.err{color:var(--bad);font-weight:600}
.warning{background:var(--warn-bg);color:var(--warn);border-left:4px solid var(--warn);border-radius:8px;
padding:10px 14px;margin:0 0 14px}
footer{color:var(--muted);font-size:12.5px;text-align:center;padding:10px 0 30px}
@media print{nav{display:none}section{break-inside:avoid}}
"""


# -- reading the folder ---------------------------------------------------------------------
def data_uri(path: Path) -> str | None:
    """The picture as a data: URI; None when it is missing, too large, or (through a link)
    outside the run folder, whose files alone the page shows."""
    try:
        check_inside(path.parents[1], path)
        return "data:image/png;base64," + base64.b64encode(read_limited(path, MAX_PICTURE_BYTES)).decode("ascii")
    except (OSError, TooLarge, OutsideFolder):
        return None


def evaluations(run_dir: Path) -> list[dict]:
    docs = []
    for split in SPLIT_ORDER:  # the files evaluate writes, no others
        doc = read_json_or(run_dir / f"evaluation-{split}.json")
        if isinstance(doc, dict):
            docs.append(doc | {"split": split})
    rank = {s: i for i, s in enumerate(SPLIT_ORDER)}
    return sorted(docs, key=lambda d: (rank.get(d["split"], 99), d["split"]))


# -- formatting -----------------------------------------------------------------------------
def pct(v: Any, digits: int = 2) -> str:
    return fmt.pct(v, digits, missing="–")


def fixed(v: Any, digits: int = 4) -> str:
    return fmt.fixed(v, digits, missing="–")


def seconds(v: Any) -> str:
    return fmt.duration(v, missing="–", sep=" ")


def text(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (dict, list)):
        return escape(json.dumps(v))
    return escape(str(v))


def slug(s: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in s.lower()).strip("-")


def table(headers: list[str], rows: Iterable[list[str]], left: int = 1, cls: str = "",
          row_classes: list[str] | None = None) -> str:
    """HTML table; cells are already-escaped HTML. The first `left` columns align left."""
    head = "".join(f'<th class="l">{h}</th>' if i < left else f"<th>{h}</th>" for i, h in enumerate(headers))
    body = []
    for r, row in enumerate(rows):
        rc = (row_classes or [])[r] if row_classes and r < len(row_classes) else ""
        cells = "".join(f'<td class="l">{c}</td>' if i < left else f"<td>{c}</td>" for i, c in enumerate(row))
        body.append(f'<tr class="{rc}">{cells}</tr>' if rc else f"<tr>{cells}</tr>")
    return (f'<div class="table-wrap"><table class="{cls}"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def kv_table(pairs: list[tuple[str, str]]) -> str:
    rows = "".join(f"<tr><td>{escape(k)}</td><td>{v}</td></tr>" for k, v in pairs)
    return f'<div class="table-wrap"><table class="kv"><tbody>{rows}</tbody></table></div>'


def cards(pairs: list[tuple[str, str]]) -> str:
    items = "".join(f'<div class="card"><div class="k">{escape(k)}</div><div class="v">{v}</div></div>'
                    for k, v in pairs)
    return f'<div class="cards">{items}</div>'


def figure(path: Path, caption: str, used: set, cls: str = "") -> str:
    uri = data_uri(path) if path.is_file() else None
    if uri is None:
        return ""
    used.add(path.name)
    return (f'<figure class="{cls}"><img src="{uri}" alt="{escape(caption)}" loading="lazy">'
            f"<figcaption>{escape(caption)}</figcaption></figure>")


# -- sections -------------------------------------------------------------------------------
def header(summary: dict, run_dir: Path, evals: list[dict]) -> str:
    status = summary.get("status", "unknown")
    badge = f'<span class="badge {status_tone(status)}">{escape(str(status))}</span>'
    test = next((e for e in evals if e.get("split") == "test"), None)
    test_acc = summary.get("test_accuracy")
    if test_acc is None and test:
        test_acc = test.get("accuracy")
    best = summary.get("best") or {}
    bits = [("test accuracy", pct(test_acc)),
            ("val accuracy, best epoch", pct(best.get("val_accuracy"))),
            ("epochs", text(summary.get("epochs_run"))),
            ("wall time", seconds(summary.get("wall_seconds")))]
    big = "".join(f'<div class="big"><b>{v}</b>{escape(k)}</div>' for k, v in bits)
    started = summary.get("started")
    return (f'<header><div class="wrap"><h1>{escape(str(summary.get("name", run_dir.name)))} {badge}</h1>'
            f'<div class="sub">run <code>{escape(run_dir.name)}</code>'
            f'{" · started " + escape(str(started)) if started else ""}</div>'
            f'<div class="headline">{big}</div></div></header>')


def summary_section(summary: dict) -> str:
    if not summary:
        return '<section id="summary"><h2>Summary</h2><p class="muted">summary.json is missing.</p></section>'
    final = summary.get("final") or {}
    best = summary.get("best") or {}
    top = cards([("test accuracy", pct(summary.get("test_accuracy"))),
                 ("test loss", fixed(summary.get("test_loss"))),
                 ("final train accuracy", pct(final.get("train_accuracy"))),
                 ("final val accuracy", pct(final.get("val_accuracy"))),
                 (f"best epoch ({summary['monitor']})" if summary.get("monitor") else "best epoch",
                  text(summary.get("best_epoch"))),
                 ("parameters", f"{summary['num_params']:,}" if isinstance(summary.get("num_params"), int) else "–")])
    versions = summary.get("versions") or {}
    data = summary.get("data") or {}
    pairs = [("status", text(summary.get("status"))), ("seed", text(summary.get("seed"))),
             ("started", text(summary.get("started"))),
             ("epochs run", text(summary.get("epochs_run"))),
             ("monitor", text(summary.get("monitor"))),
             ("best epoch", f"{text(best.get('epoch'))} by {text(summary.get('monitor'))} (val loss {fixed(best.get('val_loss'))}, "
                            f"val accuracy {pct(best.get('val_accuracy'))})" if best else "–"),
             ("test weights", text(summary.get("test_weights"))),
             ("data", escape(", ".join(f"{k}: {v}" for k, v in data.items() if v)) or "–"),
             ("classes", escape(", ".join(map(str, summary.get("class_names") or []))) or "–"),
             ("pixel scale", f"÷ {text(summary.get('scale_divisor'))}"),
             ("wall time", seconds(summary.get("wall_seconds"))),
             ("versions", escape(", ".join(f"{k} {v}" for k, v in versions.items())) or "–")]
    if summary.get("error"):
        pairs.insert(1, ("error", f'<span class="err">{escape(str(summary["error"]))}</span>'))
    return f'<section id="summary"><h2>Summary</h2>{warnings_note(summary)}{top}{kv_table(pairs)}</section>'


def warnings_note(summary: dict) -> str:
    """The run's warnings (a run that completed but learned nothing) and the diagnostics'
    findings, above everything else."""
    notes = []
    for key, label in (("warnings", "Warning"), ("findings", "Finding")):
        items = summary.get(key) if isinstance(summary.get(key), list) else []
        notes += [f'<p class="warning" role="alert"><b>{label}:</b> {escape(str(w))}</p>' for w in items]
    return "".join(notes)


def curves_section(run_dir: Path, used: set) -> str:
    figs = (figure(run_dir / "plots" / "learning_curves.png", "Learning curves: loss and accuracy per epoch", used)
            + figure(run_dir / "plots" / "lr_schedule.png", "Learning rate per epoch", used, "small"))
    if not figs:
        return ""
    return f'<section id="curves"><h2>Learning curves</h2>{figs}</section>'


def epochs_section(rows: list, summary: dict) -> str:
    if not rows:
        return ('<section id="epochs"><h2>Per-epoch metrics</h2>'
                '<p class="muted">No epochs recorded.</p></section>')
    best = summary.get("best_epoch")
    body = [[text(r.get("epoch")), f"{fmt.finite(r.get('lr')):.3g}" if fmt.finite(r.get("lr")) is not None else "–",
             fixed(r.get("train_loss")), pct(r.get("train_accuracy")), fixed(r.get("val_loss")),
             pct(r.get("val_accuracy")), fixed(r.get("seconds"), 2)] for r in rows]
    classes = ["best" if r.get("epoch") == best else "" for r in rows]
    note = f'<p class="muted">Highlighted: the best epoch ({escape(str(summary.get("monitor", "")))}).</p>' \
        if best is not None else ""
    tbl = table(["epoch", "lr", "train loss", "train acc", "val loss", "val acc", "seconds"], body,
                left=0, row_classes=classes)
    return f'<section id="epochs"><h2>Per-epoch metrics</h2>{note}<div class="epochs">{tbl}</div></section>'


def cm_table(cm: list, names: list[str]) -> str:
    head = "".join(f"<th>{escape(str(n))}</th>" for n in names)
    rows = []
    for i, row in enumerate(cm):
        total = sum(row)
        cells = []
        for j, c in enumerate(row):
            frac = c / total if total else 0.0
            bg = f"rgba(0,114,178,{0.08 + 0.85 * frac:.3f})" if c else "transparent"
            color = "#fff" if frac > 0.55 else ("#1f2933" if c else "#c0c6cc")
            cells.append(f'<td class="{"diag" if i == j else ""}" style="background:{bg};color:{color}" '
                         f'title="true {escape(str(names[i]))}, predicted {escape(str(names[j]))}: '
                         f'{c} ({100 * frac:.1f}% of row)">{c}</td>')
        rows.append(f'<tr><th>{escape(str(names[i]))}</th>{"".join(cells)}<td class="muted">{total}</td></tr>')
    return (f'<div class="table-wrap"><table class="cm"><thead><tr><th title="rows: true class, columns: predicted class">true \\ pred</th>{head}'
            f'<th class="muted">n</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div>')


def shown_evaluation(run_dir: Path, ev: dict, used: set) -> str:
    """An evaluation's section; a note in its place when its file holds values of the wrong
    types (damaged, or not written by nnrun): one such file never breaks the page."""
    try:
        return evaluation_section(run_dir, ev, used)
    except (TypeError, ValueError, KeyError, AttributeError, IndexError):
        return (f'<section id="eval-{slug(ev["split"])}"><h2>Evaluation: {escape(ev["split"])} split</h2>'
                f'<p class="err">evaluation-{escape(ev["split"])}.json cannot be shown: it is damaged or was '
                "not written by nnrun; run nnrun evaluate again.</p></section>")


def evaluation_section(run_dir: Path, ev: dict, used: set) -> str:
    split = str(ev.get("split"))
    names = [str(n) for n in ev.get("class_names") or []]
    macro, weighted = ev.get("macro_avg") or {}, ev.get("weighted_avg") or {}
    parts = [cards([("accuracy", pct(ev.get("accuracy"))),
                    (f"loss ({ev.get('loss_name', 'loss')})", fixed(ev.get("loss"))),
                    ("samples", text(ev.get("num_samples"))),
                    ("correct", text(ev.get("num_correct"))),
                    ("macro F1", fixed(macro.get("f1"), 3)),
                    ("weighted F1", fixed(weighted.get("f1"), 3))])]
    meta = [("data", text(ev.get("data"))), ("evaluated", text(ev.get("evaluated")))]
    if ev.get("overrides"):
        meta.append(("overrides", escape(" ".join(ev["overrides"]))))
    parts.append(kv_table(meta))
    plots = run_dir / "plots"
    tables = []
    if ev.get("confusion_matrix"):
        tables.append("<div><h3>Confusion matrix</h3>" + cm_table(ev["confusion_matrix"], names)
                      + '<p class="muted">Rows are the true class, columns the predicted class; '
                        "shading is the fraction of the row.</p></div>")
    per_class = ev.get("per_class") or []
    if per_class:
        rows = [[escape(str(c.get("name"))), fixed(c.get("precision"), 3), fixed(c.get("recall"), 3),
                 fixed(c.get("f1"), 3), text(c.get("support"))] for c in per_class]
        n = ev.get("num_samples")
        rows += [["macro avg", fixed(macro.get("precision"), 3), fixed(macro.get("recall"), 3),
                  fixed(macro.get("f1"), 3), text(n)],
                 ["weighted avg", fixed(weighted.get("precision"), 3), fixed(weighted.get("recall"), 3),
                  fixed(weighted.get("f1"), 3), text(n)]]
        never = ev.get("never_predicted")
        tables.append("<div><h3>Per-class metrics</h3>" + table(
            ["class", "precision", "recall", "F1", "support"], rows,
            row_classes=[""] * len(per_class) + ["avg", "avg"])
            + (f'<p class="err">Never predicted: {escape(", ".join(map(str, never)))}</p>' if never else "")
            + "</div>")
    ovr = ev.get("one_vs_rest") or []
    if ovr:
        tables.append("<div><h3>One vs rest</h3>" + table(
            ["class", "TP", "FP", "FN", "TN"],
            [[escape(str(r.get("class"))), text(r.get("tp")), text(r.get("fp")), text(r.get("fn")),
              text(r.get("tn"))] for r in ovr]) + "</div>")
    tops = ev.get("top_confusions") or []
    tables.append("<div><h3>Most frequent confusions</h3>" + (table(
        ["true", "predicted", "count"],
        [[escape(str(t.get("true"))), "→ " + escape(str(t.get("predicted"))), text(t.get("count"))]
         for t in tops], left=2) if tops else '<p class="muted">No mistakes.</p>') + "</div>")
    parts.append(f'<div class="grid2">{"".join(tables)}</div>')
    pair = [figure(plots / f"confusion_matrix-{split}.png", f"Confusion matrix ({split})", used),
            figure(plots / f"misclassified-{split}.png",
                   f"Misclassified samples ({split}), most confident mistakes first", used)]
    wide = figure(plots / f"per_class-{split}.png", f"Precision, recall and F1 per class ({split})", used)
    tall = figure(plots / f"predictions-{split}.png",
                  f"Sample predictions ({split}) with their class probabilities", used, "small")
    if any(pair) or wide or tall:
        parts.append(f'<h3>Plots</h3><div class="grid2">{"".join(f for f in pair if f)}</div>{wide}{tall}')
    return (f'<section id="eval-{slug(split)}"><h2>Evaluation: {escape(split)} split</h2>'
            f'{"".join(parts)}</section>')


def ratio(v: Any) -> str:
    f = fmt.finite(v)
    return "–" if f is None else f"{f:.2g}"


def diagnostics_section(run_dir: Path, summary: dict, used: set) -> str:
    """diagnostics.csv: the picture, and each layer's figures in the last epoch."""
    rows = read_diagnostics(run_dir)
    if not rows:
        return ""
    last = [r for r in rows if r.get("epoch") == rows[-1].get("epoch")]
    body = [[escape(f"{r.get('layer')} {r.get('type')}"), escape(str(r.get("activation") or "")), ratio(r.get("grad_norm")),
             ratio(r.get("update_ratio")), pct(r.get("dead_fraction"), 0), pct(r.get("saturated_fraction"), 0)]
            for r in last]
    tbl = table(["layer", "activation", "gradient norm", "update / weight", "dead ReLU", "saturated"], body, left=2)
    fig = figure(run_dir / "plots" / "diagnostics.png", "Per layer: gradient norm, update-to-weight ratio, "
                 "dead and saturated units", used)
    findings = summary.get("findings") if isinstance(summary.get("findings"), list) else []
    said = "".join(f"<li>{escape(str(f))}</li>" for f in findings)
    return ('<section id="diagnostics"><h2>Diagnostics</h2>'
            + (f"<ul>{said}</ul>" if said else '<p class="muted">No findings: no layer looked unhealthy.</p>')
            + f'{fig}<h3>Epoch {escape(str(rows[-1].get("epoch")))}, per layer</h3>{tbl}'
            f'<p class="muted">Gradient norm and update / weight: the mean over a few steps of the epoch; '
            f"dead: ReLU units zero on every probe sample; saturated: tanh/sigmoid units in the flat tail.</p>"
            f"</section>")


def weights_section(run_dir: Path, used: set) -> str:
    fig = figure(run_dir / "plots" / "weights.png", "What the first trainable layer learned", used)
    return f'<section id="weights"><h2>Learned weights</h2>{fig}</section>' if fig else ""


def other_plots_section(run_dir: Path, used: set) -> str:
    rest = sorted(p for p in (run_dir / "plots").glob("*.png") if p.name not in used) \
        if (run_dir / "plots").is_dir() else []
    figs = "".join(figure(p, p.stem.replace("_", " "), used) for p in rest)
    return f'<section id="more-plots"><h2>More plots</h2>{figs}</section>' if figs else ""


def config_section(run_dir: Path) -> str:
    try:
        cfg = read_limited(run_dir / "config.yaml", MAX_CONFIG_BYTES).decode("utf-8", errors="replace")
    except OSError:
        cfg = "# config.yaml is missing"
    except TooLarge as e:
        cfg = f"# config.yaml is {e.size_text}, too large to show"
    return (f'<section id="config"><h2>Config</h2><p class="muted">The resolved config '
            f'(every default filled in), as saved in config.yaml.</p><pre>{escape(cfg)}</pre></section>')


# -- the page -------------------------------------------------------------------------------
def render(run_dir: Path) -> str:
    summary = read_summary(run_dir) or {}
    rows = read_rows(run_dir)
    evals = evaluations(run_dir)
    used: set = set()
    sections = [("summary", "Summary", summary_section(summary)),
                ("curves", "Curves", curves_section(run_dir, used)),
                ("epochs", "Epochs", epochs_section(rows, summary))]
    for ev in evals:
        sections.append((f"eval-{slug(str(ev['split']))}", f"Evaluation ({ev['split']})",
                         shown_evaluation(run_dir, ev, used)))
    sections.append(("diagnostics", "Diagnostics", diagnostics_section(run_dir, summary, used)))
    sections.append(("weights", "Weights", weights_section(run_dir, used)))
    sections.append(("more-plots", "More plots", other_plots_section(run_dir, used)))
    sections.append(("config", "Config", config_section(run_dir)))
    sections = [s for s in sections if s[2]]
    nav = "".join(f'<a href="#{anchor}">{escape(label)}</a>' for anchor, label, _ in sections)
    versions = summary.get("versions") or {}
    title = f"{summary.get('name', run_dir.name)} · nnrun report"
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
            f"{header(summary, run_dir, evals)}"
            f'<nav><div class="wrap">{nav}</div></nav>'
            f'<main><div class="wrap">{"".join(s[2] for s in sections)}</div></main>'
            f'<footer>Generated by nnrun {escape(str(versions.get("nnrun", "")))} on '
            f'{time.strftime("%Y-%m-%d %H:%M:%S")} from the files in {escape(run_dir.name)}/</footer>'
            f"</body></html>\n")


def write_report(run_dir: str | os.PathLike) -> Path:
    """Write (or refresh) <run_dir>/report.html from the folder's files; returns its path."""
    run_dir = Path(run_dir)
    path = run_dir / "report.html"
    write_text(path, render(run_dir))
    return path
