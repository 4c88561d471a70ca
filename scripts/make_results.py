"""Write docs/results.md from the JSON records under docs/results/ (made by scripts/study.py),
followed by the hand-written docs/results/DISCUSSION.md when it exists.

python scripts/make_results.py [--records docs/results] [--out docs/results.md]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path, PurePosixPath

from ladd.files import write_text

PAPER = {
    "1": "Paper Table S2 (CIFAR-10, ConvNet-D3): the reproduced DATM-dagger row 47.6 -> LADD 48.6 at "
    "IPC 1, 65.5 -> 67.2 at IPC 10 (the paper's own DATM row: 46.9 / 66.8); random real 15.4 / "
    "31.0; DM 26.0 / 48.9; MTT 46.2 / 65.4.",
    "2": "Paper (ImageNette, 128 px, IPC 5): Baseline++ costs 20.7 % storage and gains ~1 point; "
    "LADD costs ~2.5 % at 128 px.",
    "3": "Paper Table S1 (ImageNette, IPC 5): more crops help with diminishing returns; R = 62.5 % "
    "best on average.",
    "4": "Paper Fig. 5: later labeler epochs are more accurate but over-confident (lower entropy); "
    "the paper argues that a less-trained labeler gives more diverse, less over-confident dense "
    "labels, which serve LADD better; epoch 10 is the default.",
    "5": "Paper Table 6 (GLaD(MTT), ImageNette, IPC 5): full images with hard/soft labels ~44.2-44.5; "
    "crops + hard 44.1; crops + dense 51.1; full + crops, hard + dense (LADD) 53.9.",
    "6": "Paper Table 2 (ImageNette, per architecture, e.g. MTT ConvNet-D5 61.2 -> 62.1, ViT 35.9 "
    "-> 37.8) and Table 1 (4-architecture averages): LADD improves every distiller across "
    "ConvNet-D5, AlexNet, VGG11, ResNet18 (and ViT).",
    "9": "Not in the paper. DD-Ranking (NUS-HPC-AI-Lab/DD-Ranking, ddranking/metrics/) rates a set "
    "by how much it owes its labels: HLR = full-data accuracy - hard-label accuracy, IOR = "
    "accuracy - same-IPC random real's under the same protocol, LRS and ARS squash those "
    "through (e^x - e^-1) / (e - e^-1) with percentage points in the exponent (its "
    "utils/meter.py reports percentages). Its protocol picks the lr and the epoch on the test "
    "set; ours trains one protocol per variant and tests the last epoch once (`ladd score`).",
    "7": "Not in the paper, which stores dense labels as float32 (2.5 % overhead at 128 px). "
    "Label-pruning work (LPLD) reports ImageNet-1K soft labels at top-50 / top-10 for 27.3 / "
    "20.0 % accuracy; here each codec's accuracy sits beside its label bytes per image "
    "(issue 26; `scripts/study.py --parts 7`).",
    "8": "Not in the paper, whose future work asks for a learned weight between the dense and hard "
    "terms and other static sub-samplers. The field's label-use methods each report gains under "
    "their own protocol: GIFT (label smoothing + cosine loss), EDC's mse_gt (CE weight 0.025), "
    "HALD's soft/hard phases, LPQLD's temperature schedule with a calibrated student, FKD-style "
    "random crops relabelled per epoch. Here each runs on LADD's labels under one protocol, at "
    "its label bytes per image (issue 37; `scripts/study.py --parts 8`).",
}
TITLES = {
    "1": "1. Baseline vs LADD at IPC 1 and 10",
    "2": "2. Baseline++ (IPC + 1) vs LADD at IPC 10, with storage overhead",
    "3": "3. N x R grid at IPC 10",
    "4": "4. Labeler epochs: accuracy, dense-label entropy, student accuracy",
    "5": "5. Label-mode ablation (Table 6)",
    "6": "6. Cross-architecture at IPC 10",
    "7": "7. Label codecs: accuracy against label bytes at IPC 10",
    "9": "9. Scores: how much of a set is its labels (`ladd score`, DD-Ranking's HLR/IOR/LRS/ARS)",
    "8": "8. Label strategies under one protocol: accuracy against label bytes at IPC 10",
}


def acc(r: dict) -> str:
    return f"{100 * r['mean']:.1f} ± {100 * r['std']:.1f}"


def cell(r: dict) -> str:
    """The accuracy, and where a borrowed run came from (scripts/study.py writes a table's
    record of a run group another table trained, marked "borrowed")."""
    return acc(r) + (f" ({r['borrowed']})" if r.get("borrowed") else "")


def portable(command: str) -> str:
    """A record's command as a reader runs it from the repository root: each absolute folder of
    the machine that made the record becomes relative (from `docs/` on where it is the
    repository's own, else the folder's name). The record's JSON keeps the command as run."""
    words = []
    for word in command.split(" "):
        if word.startswith("/"):
            parts = PurePosixPath(word).parts
            word = "/".join(parts[parts.index("docs") :]) if "docs" in parts else parts[-1]
        words.append(word)
    return " ".join(words)


def setting(r: dict) -> str:
    width = f", width {r['width']}" if r.get("width") else ""
    protocol = f", protocol {r['protocol']}" if r.get("protocol") else ""
    recipe = f", labeler {r['labeler_recipe']}" if r.get("labeler_recipe") else ""
    return (
        f"{r['profile']} profile: {r['epochs']} epochs, {r['seeds']} seeds{width}{protocol}"
        f"{recipe}, {r['device']}"
    )


PROFILE_NAMES = {
    "gpu": "GPU profile (protocol size: 1000 epochs, 5 seeds, width 128)",
    "cpu": "CPU profile (reduced; see the discussion)",
}
PROTOCOL = """## Protocol

Every record names the protocol it was made under (`protocol` in its JSON; the Setting line of
each table). Records made under an earlier protocol are kept in git history, not in these tables.

| choice | what we do | why |
|---|---|---|
| labeler | ConvNet-D3, SGD lr 0.01, momentum 0, weight decay 0, batch 256, DSA, constant lr; checkpoints up to epoch 50, epoch 10 used | LADD trains it "following [2]", MTT's `buffer.py` (`--lr_teacher 0.01 --mom 0 --l2 0`, DSA on); lr 0.01 as in the paper's Sec. 4.1 (Sec. 3.2 says 0.015) |
| deployment (CIFAR) | `mtt`: SGD momentum 0.9, weight decay 5e-4, batch 256, one DSA op per batch, lr x 0.1 after pass E//2 + 1 with a fresh optimiser, E + 1 passes, tested once at the end | MTT/DATM `utils.evaluate_synset`, which the paper's CIFAR numbers follow |
| deployment (128 px) | `glad`: linear warm-up from 1e-7 lr over E//2 passes, cosine decay over E//2, an EMA (beta 0.995) of the weights is tested | GLaD `utils.evaluate_synset`, which LADD says it adheres to |
| learning rate | a set's learned lr only for its distillation architecture under `mtt`; else per-model rates: ConvNet 0.01 at 32 px (DC/DM's rate), AlexNet/ResNet18/ViT 0.001, VGG11 0.0001 (GLaD's) | MTT/DATM evaluate the distillation model with the learned lr; ConvNet's 0.01 is DC/DM's `--lr_net` default (VICO-UoE/DatasetCondensation `main_DM.py`, read by `utils.evaluate_synset`), not GLaD's: GLaD's `get_eval_lrs` (glad_utils.py) gives every model 0.001, ConvNet included, except VGG11 (0.0001) |
| full-image labels | one-hot (a set's own soft labels only with `--full-labels set_soft`) | Eq. 5 |
| loss | soft cross-entropy averaged over a shuffled batch of images and crops (`--loss image_sum` for Eq. 5's per-image sum) | what the field's loaders do; Eq. 5 differs by a constant factor per batch |
| selection | none: one test at the end, on the whole real test split | no model selection on the test set (GLaD's `eval_loop` reports the max over evaluations; we do not) |
"""


def groups(part: str, rows: list[dict]) -> dict[tuple, list[dict]]:
    """One table per profile (part 1 lists its distillers itself; later parts use one each)."""
    by: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        key = (r["profile"],) if part == "1" else (r["profile"], r["distiller"])
        by[key].append(r)
    return dict(sorted(by.items(), key=lambda kv: (kv[0][0] != "gpu", kv[0])))


def part6_archs(profile: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Table 6's rows (every architecture of the paper's Table 2) and those this profile runs
    (scripts/study.py's profiles: the CPU profile leaves ResNet-18 and the ViT to the GPU)."""
    from study import ALL_ARCHS, PROFILES  # beside this script; it imports torch, so only here

    return ALL_ARCHS, (PROFILES[profile].archs if profile in PROFILES else ALL_ARCHS)


CLASSES = {"cifar10": 10, "cifar100": 100}  # chance is 1 / classes
PART6_FOOTNOTES = {
    "(*)": "Hybrid: these rows train under protocol `mtt` (MTT/DATM's step schedule, E + 1 "
    "passes, no EMA) with GLaD's per-model learning rates (glad_utils.py `get_eval_lrs`), a "
    "pairing no upstream uses: MTT/DATM train every evaluated model at their own (learned) lr, "
    "and GLaD uses these rates with its own schedule (linear warm-up, cosine decay, EMA), which "
    "`--protocol glad` offers for these architectures.",
    "(†)": "Near chance: the baseline is below 1.5x chance (1 / classes); with few SGD steps at "
    "these small rates the model has barely left its initialisation, so the gain over it says "
    "little about the architecture.",
}


def part6_note(arch: str, b: dict | None, la: dict | None) -> list[str]:
    """The caveats of a table 6 row: a schedule no upstream pairs with these rates, and a
    baseline near chance (the note column; PART6_FOOTNOTES explains each mark)."""
    runs = [r for r in (b, la) if r]
    note: list[str] = []
    if any(r.get("protocol") == "mtt" and not arch.startswith("convnet") for r in runs):
        note.append("hybrid: MTT schedule, GLaD lr (*)")
    if b and b["mean"] < 1.5 / CLASSES.get(b.get("dataset", ""), 10):
        note.append("baseline near chance (†)")
    return note


def section(part: str, rows: list[dict], figures: Path | None = None) -> list[str]:
    out = [f"## {TITLES[part]}", "", PAPER[part], ""]
    for key, group in groups(part, rows).items():
        title = PROFILE_NAMES.get(key[0], f"{key[0]} profile")
        if len(key) > 1:
            title += f", distiller {key[1]}"
        out += [f"### {title}", ""] + table(part, group, key[0])
    if part == "7":
        out += part7_default(rows)
        if figures is not None:
            out += part7_figure(rows, figures)
    if part == "8":
        out += part8_ranking(rows)
        if figures is not None:
            out += part8_figure(rows, figures)
    return out


def _paired(d) -> str:
    """A paired difference in points: mean [low, high]."""
    return f"{100 * d.mean:+.2f} [{100 * d.low:+.2f}, {100 * d.high:+.2f}]"


PART7_RULE = (
    "Rule (ladd.codecs.choice): codecs are compared with float32 paired by seed (seed i of "
    "every run group shares its initial weights, batch order and augmentation; only the labels "
    "differ). For each codec, d_i = accuracy(codec, seed i) - accuracy(float32, seed i); the "
    "table gives the mean of the d_i in points and its two-sided 95 % Student-t interval, mean "
    "± t(0.975, n - 1) · sd / √n, per distiller (n = 3) and pooled over both distillers' seeds "
    "(n = 6). The default is the codec with the fewest label bytes per image whose interval "
    "includes 0 or lies above it (upper end ≥ 0), pooled and on every distiller; float32 is the "
    "reference."
)


PART8_RULE = (
    "Paired by seed: every run group trains seeds 0 .. S-1, so each seed's accuracy is set "
    "against the same seed of LADD's default (N 5, R 0.625, its labels in the default codec, "
    "Eq. 5's loss, fixed weights); the difference is its mean ± standard deviation over seeds. "
    "A strategy **beats** the default when it stores no more bytes per image (labels, plus the "
    "boxes and flips a store of random crops must keep) and its paired mean is above 0 by more "
    "than two standard errors; **worse** when below by as much; else **within noise** (with 3 "
    "seeds two standard errors are wide) (ladd.strategies.compare)."
)


def part8_ranking(rows: list[dict]) -> list[str]:
    """What beats LADD's default at equal bytes, and by how much, per profile and distiller."""
    from ladd.strategies.compare import compare, strategy_points

    out: list[str] = ["### Against LADD's default, paired by seed", "", PART8_RULE, ""]
    for profile in sorted({r["profile"] for r in rows}):
        paired = compare(strategy_points(r for r in rows if r["profile"] == profile))
        if not paired:
            out += [f"_{profile} profile: no default run group to pair with yet._", ""]
            continue
        for d in sorted({c.point.distiller for c in paired}):
            mine = [c for c in paired if c.point.distiller == d]
            beats = [c for c in mine if c.verdict == "beats"]
            worse = [c for c in mine if c.verdict == "worse"]
            ref = mine[0].reference
            say = (
                "beat it: "
                + "; ".join(
                    f"{c.point.what} by {100 * c.mean:+.1f} ± {100 * c.sd:.1f}" for c in beats
                )
                if beats
                else "none beats it"
            )
            out.append(
                f"- **{profile}, {d}** (default {100 * ref.mean:.1f} at "
                f"{ref.total_bytes:,.0f} bytes per image): {say}; worse: "
                + (", ".join(c.point.what for c in worse) or "none")
                + "."
            )
        out.append("")
    return out


def part8_figure(rows: list[dict], figures: Path) -> list[str]:
    """Accuracy against the bytes per image a strategy stores (labels + geometry), one panel
    per distiller, families in colours, the frontier drawn (the Results page draws it too)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ladd.strategies.compare import pareto, strategy_points

    points = strategy_points(rows)
    if not points:
        return []
    distillers = sorted({p.distiller for p in points})
    colours = {
        "baseline": "C3",
        "grid": "C0",
        "sampler": "C2",
        "stored crops": "C1",
        "loss": "C4",
        "schedule": "C5",
        "balance": "C6",
    }
    fig, axes = plt.subplots(
        1, len(distillers), figsize=(6.0 * len(distillers), 4.6), squeeze=False
    )
    for ax, d in zip(axes[0], distillers, strict=True):
        mine = [p for p in points if p.distiller == d]
        front = sorted(pareto(mine), key=lambda p: p.total_bytes)
        ax.plot([p.total_bytes for p in front], [100 * p.mean for p in front], "-", color="0.75")
        for fam in colours:
            pts = [p for p in mine if p.family == fam]
            if not pts:
                continue
            ax.errorbar(
                [p.total_bytes for p in pts],
                [100 * p.mean for p in pts],
                yerr=[100 * p.std for p in pts],
                fmt="o",
                color=colours[fam],
                label=fam,
                capsize=2,
                markersize=4,
            )
        for i, p in enumerate(sorted(mine, key=lambda p: (p.total_bytes, p.mean))):
            ax.annotate(
                p.what,
                (p.total_bytes, 100 * p.mean),
                fontsize=6,
                xytext=(4, 6 if i % 2 else -9),
                textcoords="offset points",
            )
        ax.set_title(f"{d}, IPC 10")
        ax.set_xlabel("bytes per image beyond the image (labels + stored boxes)")
        ax.set_ylabel("accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    figures.mkdir(parents=True, exist_ok=True)
    path = figures / "part8-frontier.png"
    fig.savefig(path, dpi=120, metadata={"Software": None})
    plt.close(fig)
    return [f"![Part 8: accuracy against bytes per image](figures/{path.name})", ""]


def part7_default(rows: list[dict]) -> list[str]:
    """Every codec's paired difference against float32 and the default the rule picks
    (ladd.codecs.choice), per profile."""
    from ladd.codecs.choice import POOLED, choose_default, frontier_points, paired_differences

    out: list[str] = []
    for profile in sorted({r["profile"] for r in rows}):
        points = frontier_points(r for r in rows if r["profile"] == profile)
        pick = choose_default(points)
        out += [f"### The default codec ({profile} profile)", "", PART7_RULE, ""]
        if pick is None:
            out += [
                "_Not enough records to apply it (float32 and another codec on each distiller)._",
                "",
            ]
            continue
        diffs = paired_differences(points)
        distillers = sorted({p.distiller for p in points if p.ladd})
        size = {p.what: p.label_bytes_per_image for p in points if p.ladd}
        head = ["codec", "label bytes / image", "pooled", *distillers, "interval reaches 0"]
        out += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for codec in sorted(diffs, key=lambda c: (size[c], c)):
            per = diffs[codec]
            cells = [per[w] for w in (POOLED, *distillers) if w in per]
            ok = "yes" if all(d.within for d in cells) else "no"
            out.append(
                f"| {codec} | {size[codec]:,.0f} | "
                + " | ".join(_paired(per[w]) if w in per else "—" for w in (POOLED, *distillers))
                + f" | {ok} |"
            )
        out.append("")
        if pick.differences:
            pooled = pick.differences[POOLED]
            cost = (
                f"Paired by seed it scores {_paired(pooled)} points against float32 over "
                f"{pooled.n} seeds (mean [95 % interval]; "
                + ", ".join(f"{d} {100 * pick.differences[d].mean:+.2f}" for d in distillers)
                + ")."
            )
        else:
            cost = "It is the reference."
        out += [
            f"Picked: **{pick.codec}**, {pick.label_bytes_per_image:,.0f} label bytes per image "
            f"against float32's {pick.reference_bytes_per_image:,.0f} "
            f"({100 * pick.saving:.0f} % fewer). {cost}",
            "",
        ]
        if pick.rejected:
            out += [
                "Passed over (fewer bytes): "
                + "; ".join(f"{c} ({why})" for c, why in pick.rejected.items())
                + ".",
                "",
            ]
    return out


def part7_figure(rows: list[dict], figures: Path) -> list[str]:
    """Accuracy against total bytes (zip overhead), one panel per distiller: a PNG in
    `figures`, linked from results.md (the dashboard's Results page draws it with plotly)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ladd.codecs.choice import frontier_points, pareto

    points = frontier_points(rows)
    distillers = sorted({p.distiller for p in points})
    fig, axes = plt.subplots(
        1, len(distillers), figsize=(5.5 * len(distillers), 4.2), squeeze=False
    )
    for ax, d in zip(axes[0], distillers, strict=True):
        mine = [p for p in points if p.distiller == d]
        front = sorted((p for p in pareto(mine)), key=lambda p: p.overhead)
        ax.plot([100 * p.overhead for p in front], [100 * p.mean for p in front], "-", color="0.7")
        on_front = {id(p) for p in front}
        for p in mine:
            ax.errorbar(
                100 * p.overhead,
                100 * p.mean,
                yerr=100 * p.std,
                fmt="o" if p.ladd else "s",
                color="C0" if p.ladd else "C3",
                alpha=1.0 if id(p) in on_front or not p.ladd else 0.35,
                capsize=2,
                markersize=4,
            )
        # Names for the frontier and the baselines only (the rest are faded, unnamed: the table
        # names them); points that sit on one another share one name.
        named = sorted(
            (p for p in mine if id(p) in on_front or not p.ladd), key=lambda p: p.overhead
        )
        groups: list[list] = []
        for p in named:
            last = groups[-1][-1] if groups else None
            if last and abs(p.overhead - last.overhead) < 0.01 and abs(p.mean - last.mean) < 0.003:
                groups[-1].append(p)
            else:
                groups.append([p])
        first_ladd = next((g for g in groups if g[0].ladd), None)
        for group in groups:
            first = group[0]
            # LADD names stand slanted above their error bars, so that neighbours a few pixels
            # apart do not overwrite each other; the baselines' and the fewest-bytes codec's
            # (below the steep part of the curve) sit beside their points.
            slant = first.ladd and group is not first_ladd
            ax.annotate(
                " / ".join(q.what.replace(",uniform", "") for q in group),
                (100 * first.overhead, 100 * (first.mean + (first.std if slant else 0.0))),
                fontsize=7,
                xytext=(1, 3) if slant else (5, 0),
                textcoords="offset points",
                rotation=60 if slant else 0,
                rotation_mode="anchor",
                va="bottom" if slant else "center",
            )
        low, high = ax.get_ylim()
        ax.set_ylim(low, high + 0.45 * (high - low))
        ax.set_title(f"{d}, IPC 10")
        ax.set_xlabel("storage overhead over the uint8 images (zip, %)")
        ax.set_ylabel("accuracy (%)")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    figures.mkdir(parents=True, exist_ok=True)
    path = figures / "part7-frontier.png"
    fig.savefig(path, dpi=120, metadata={"Software": None})
    plt.close(fig)
    return [f"![Part 7: accuracy against storage overhead](figures/{path.name})", ""]


def table(part: str, rows: list[dict], profile: str) -> list[str]:
    out: list[str] = []
    if part == "1":
        out += ["| distiller | IPC | baseline | LADD | gain |", "|---|---|---|---|---|"]
        by = defaultdict(dict)
        for r in rows:
            by[(r["distiller"], r["ipc"])][r["mode"]] = r
        for (d, ipc), m in sorted(by.items()):
            b, la = m.get("baseline"), m.get("ladd")
            gain = f"{100 * (la['mean'] - b['mean']):+.1f}" if b and la else "—"
            out.append(
                f"| {d} | {ipc} | {acc(b) if b else '—'} | {acc(la) if la else '—'} | {gain} |"
            )
    elif part == "2":
        out += ["| set | accuracy | storage overhead |", "|---|---|---|"]
        for r in sorted(rows, key=lambda r: r.get("label", "")):
            out.append(
                f"| {r.get('label', r['mode'])} | {cell(r)} | {100 * r.get('overhead', 0):.1f} % |"
            )
    elif part == "3":
        out += ["| N | R | accuracy | overhead |", "|---|---|---|---|"]
        for r in sorted(rows, key=lambda r: (r["n"], r["r"])):
            out.append(f"| {r['n']} | {r['r']} | {cell(r)} | {100 * r.get('overhead', 0):.1f} % |")
    elif part == "4":
        out += [
            "| labeler epoch | labeler acc | mean max prob | mean entropy (nats) | student |",
            "|---|---|---|---|---|",
        ]
        for r in sorted(rows, key=lambda r: r["labeler_epoch"]):
            out.append(
                f"| {r['labeler_epoch']} | {100 * r['labeler_accuracy']:.1f} | "
                f"{r['mean_max_prob']:.3f} | {r['mean_entropy']:.3f} | {cell(r)} |"
            )
    elif part == "5":
        order = [
            "baseline",
            "full_soft",
            "full_hard_soft",
            "crops_hard",
            "crops_dense",
            "crops_hard_dense",
            "ladd",
        ]
        out += ["| mode | accuracy |", "|---|---|"]
        for r in sorted(rows, key=lambda r: order.index(r["mode"])):
            out.append(f"| {r['mode']} | {cell(r)} |")
    elif part == "6":
        out += [
            "| architecture | lr | baseline | LADD | gain | note |",
            "|---|---|---|---|---|---|",
        ]
        notes: set[str] = set()
        by = defaultdict(dict)
        for r in rows:
            by[r["arch"]][r["mode"]] = r
        archs, planned = part6_archs(profile)
        for arch in [*archs, *sorted(set(by) - set(archs))]:  # all of the table's, run or not
            b, la = by[arch].get("baseline"), by[arch].get("ladd")
            gain = f"{100 * (la['mean'] - b['mean']):+.1f}" if b and la else "—"
            absent = "not run" if arch in planned else "GPU profile only"
            cells = [cell(r) if r else absent for r in (b, la)]
            lrs = sorted({f"{r['lr']:g}" for r in (b, la) if r and r.get("lr") is not None})
            lr = " / ".join(lrs) or "—"  # the deployment lr the runs used (per architecture)
            note = part6_note(arch, b, la)
            notes.update(mark for mark in PART6_FOOTNOTES if any(mark in n for n in note))
            out.append(f"| {arch} | {lr} | {cells[0]} | {cells[1]} | {gain} | {'; '.join(note)} |")
        for mark in [m for m in PART6_FOOTNOTES if m in notes]:
            out += ["", f"{mark} {PART6_FOOTNOTES[mark]}"]
    elif part == "9":
        from ladd.score import score_metrics, score_rows

        for r in sorted(rows, key=lambda r: r["distiller"]):
            sc = r["score"]
            full = sc.get("full") or {}
            out += [
                f"{r['distiller']} at IPC {r['ipc']}; full-data accuracy "
                f"{100 * full['mean']:.1f} % ({full.get('note', '')})"
                if full
                else f"{r['distiller']} at IPC {r['ipc']}",
                "",
                f"LADD's dense labels: N = {r['n']}, R = {r['r']}, codec {r['codec']}, labeler "
                f"`{r.get('labeler_recipe')}` epoch {r.get('labeler_epoch')} "
                f"({100 * r.get('labeler_accuracy', 0):.1f} % test). {r.get('note', '')}".strip(),
                "",
                "| labels | set | random real (same IPC) | label bytes | points / KiB |",
                "|---|---|---|---|---|",
            ]
            for v in score_rows(sc):
                rnd = (
                    f"{v['random_mean']:.1f} ± {v['random_std']:.1f}"
                    if v["random_mean"] is not None
                    else "—"
                )
                per = f"{v['points_per_kib']:.3g}" if v.get("points_per_kib") else "—"
                out.append(
                    f"| {v['labels']} | {v['set_mean']:.1f} ± {v['set_std']:.1f} | {rnd} | "
                    f"{v['label_bytes']:,} | {per} |"
                )
            out += ["", "| score | mean ± std over seeds |", "|---|---|"]
            for m in score_metrics(sc):
                out.append(f"| {m['score']} | {m['mean']:+.4g} ± {m['std']:.3g} |")
            out.append("")
    elif part == "7":
        from ladd.codecs.choice import frontier_points, paired_differences, pareto

        points = frontier_points(rows)
        front = {(p.distiller, p.what) for p in pareto(points)}
        paired = paired_differences(points)
        out += [
            "| distiller | set | codec | label bytes / image | zip overhead | accuracy "
            "| paired vs float32 | frontier |",
            "|---|---|---|---|---|---|---|---|",
        ]

        def order(r: dict) -> tuple:
            return (r["distiller"], r["mode"] == "ladd", -r.get("label_bytes_per_image", 0))

        for r in sorted(rows, key=order):
            what = r.get("label", "LADD") if r["mode"] == "baseline" else "LADD"
            codec = r.get("codec", "—") if r["mode"] == "ladd" else "—"
            key = (r["distiller"], r.get("codec") or "float32" if r["mode"] == "ladd" else what)
            d = paired.get(key[1], {}).get(r["distiller"]) if r["mode"] == "ladd" else None
            vs = _paired(d) if d else ("reference" if key[1] == "float32" else "—")
            out.append(
                f"| {r['distiller']} | {what} (IPC {r['ipc']}) | {codec} | "
                f"{r.get('label_bytes_per_image', 0):,.0f} | {100 * r.get('overhead', 0):.1f} % | "
                f"{cell(r)} | {vs} | {'✓' if key in front else ''} |"
            )
    elif part == "8":
        from ladd.strategies.compare import compare, pareto, strategy_points

        points = strategy_points(rows)
        front = {id(p) for p in pareto(points)}
        paired = {id(c.point): c for c in compare(points)}
        out += [
            "| distiller | strategy | family | label bytes / image | box bytes / image "
            "| accuracy | vs default (paired) | verdict | frontier |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for p in points:
            c = paired.get(id(p))
            diff = f"{100 * c.mean:+.1f} ± {100 * c.sd:.1f}" if c else "—"
            verdict = c.verdict if c else ("the default" if p.default else "—")
            out.append(
                f"| {p.distiller} | {p.what} | {p.family} | {p.label_bytes:,.0f} | "
                f"{p.coord_bytes:,.0f} | {acc(p.record)} | {diff} | {verdict} | "
                f"{'✓' if id(p) in front else ''} |"
            )
    settings = sorted({setting(r) for r in rows})
    commands = sorted({portable(r["command"]) for r in rows})
    out += [
        "",
        "Setting: " + "; ".join(settings),
        "",
        "Command: " + "; ".join(f"`{c}`" for c in commands),
        "",
    ]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=Path, default=Path("docs/results"))
    ap.add_argument("--out", type=Path, default=Path("docs/results.md"))
    args = ap.parse_args()
    recs = [json.loads(p.read_text()) for p in sorted(args.records.glob("*.json"))]
    by_part = defaultdict(list)
    for r in recs:
        by_part[r["part"]].append(r)
    lines = [
        "# CIFAR-10 study: does label augmentation do what the paper says?",
        "",
        "Generated by `python scripts/make_results.py` from the records in `docs/results/`, which",
        "`scripts/study.py` writes (one JSON file per run group). Accuracies are top-1 on the real",
        "CIFAR-10 test set, mean ± std over seeds, in percent; no model selection on the test set.",
        "Each table's command runs from the repository root; the folders it names are relative",
        "(a record's JSON keeps the command as it was run, with that machine's absolute folders).",
        "",
        PROTOCOL,
    ]
    for part in sorted(TITLES):
        if by_part.get(part):
            lines += section(part, by_part[part], args.out.parent / "figures")
        else:
            lines += [f"## {TITLES[part]}", "", PAPER[part], "", "_Not run yet._", ""]
    discussion = args.records / "DISCUSSION.md"  # hand-written: where we differ and why
    if discussion.exists():
        lines += [discussion.read_text().strip(), ""]
    write_text(args.out, "\n".join(lines))
    print(f"wrote {args.out} from {len(recs)} records")


if __name__ == "__main__":
    main()
