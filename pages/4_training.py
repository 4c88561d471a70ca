"""Deployment training: train fresh models on a set in a mode (baseline, LADD, ablations) in the
background; training loss and test accuracy per epoch as they arrive (mean and band over seeds),
running and finished runs overlaid; every run lands in the workspace's runs database. An image
folder with a soft-label store beside it (SRe2L, LPLD, EDC, HALD, LPQLD; ladd.stores) also
trains in label mode "store", replaying the store (as `ladd train --soft-labels STORE`)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from app import cache, charts, state, tasks, widgets
from app.jobs import registry
from app.paths import workspace_root
from app.state import K
from app.text import literal
from ladd.data import list_sources
from ladd.models import list_models, supported_options
from ladd.training import MODES, PROTOCOLS, TRAINERS, TrainConfig, label_mode
from ladd.training.modes import STORE_MODE

STRATEGY_CHOICES = {  # ladd.strategies: the default first
    "loss_fn": ["soft_ce", "kl", "gift", "mse_gt"],
    "label_schedule": ["constant", "hald", "soft_hard", "temperature", "temperature:calibrated"],
    "balance": ["fixed", "learned"],
}

st.title("Deployment training")

path = widgets.set_picker(K.TR_SET, label="Label-augmented set")
b1, b2 = st.columns(2)
with b1:
    store_path = st.text_input(
        "Soft-label store (optional)",
        placeholder="stores/sre2l_ipc10",
        help="The store the set's images were relabelled into (SRe2L, CDA, LPLD, EDC, HALD, "
        "LPQLD, or one `ladd convert` wrote), the set being its image folder: mode store "
        "replays its crops, flips, mixes and soft labels. A path in the workspace or an "
        "allowed folder.",
        **state.bound(K.TR_STORE),
    ).strip()
with b2:
    test_sources = ["auto", *(s for s in list_sources() if not s.startswith("imagefolder"))]
    source = st.selectbox(
        "Source dataset",
        test_sources,
        index=0,
        help="The real test split and normalisation (as --source): auto takes the set's own; "
        "an image folder (a store's set) names none, so pick its source here.",
        **state.bound(K.TR_SOURCE),
    )
if path and store_path:
    with widgets.guard("Cannot read this store: "):
        paired = cache.soft_label_set(path, store_path)
        store_info = paired.store.info()
        st.caption(
            f"{literal(store_info.title)}: {store_info.epochs} epochs of "
            f"{store_info.crops_per_epoch} crops, batch {store_info.batch_size}, label "
            f"T {paired.label_temperature:g} (student {paired.student_temperature:g}); mode "
            "store replays it"
        )
mode_names = list(MODES) + ([STORE_MODE.name] if store_path else [])
if state.get(K.TR_MODE) not in mode_names:  # store picked, then its store cleared
    state.put(K.TR_MODE, state.default(K.TR_MODE))
c1, c2, c3 = st.columns(3)
with c1:
    archs = list_models()
    arch = st.selectbox(
        "Architecture", archs, index=archs.index("convnet_d3"), **state.bound(K.TR_ARCH)
    )
with c2:
    mode = st.selectbox(
        "Mode",
        mode_names,
        format_func=lambda m: f"{m}: {label_mode(m).description}",
        index=mode_names.index(state.default(K.TR_MODE)),
        **state.bound(K.TR_MODE),
    )
with c3:
    width = widgets.number(
        "ConvNet width",
        8,
        256,
        K.TR_WIDTH,
        step=8,
        disabled=not supported_options(arch, {"width": 32}),
    )
c4, c5, c6 = st.columns(3)
with c4:
    epochs = widgets.number("Epochs", 1, 2000, K.TR_EPOCHS)
with c5:
    seeds = widgets.number("Seeds (models)", 1, 10, K.TR_SEEDS)
with c6:
    trainer = st.selectbox(
        "Trainer",
        list(TRAINERS),
        index=list(TRAINERS).index(state.default(K.TR_TRAINER)),
        help="fast: all seeds trained together (compiled on a GPU); reference: the field-style "
        "loop, one model at a time, for comparison",
        **state.bound(K.TR_TRAINER),
    )

PROTOCOL_CHOICES = ["auto", *PROTOCOLS]
c7, c8 = st.columns(2)
with c7:
    protocol = st.selectbox(
        "Protocol",
        PROTOCOL_CHOICES,
        index=PROTOCOL_CHOICES.index(state.default(K.TR_PROTOCOL)),
        format_func=lambda p: (
            "auto: the set's family (CIFAR-size: mtt, 128 px: glad)"
            if p == "auto"
            else f"{p}: {PROTOCOLS[p].description}"
        ),
        help="How students are trained and which weights are tested (see the README's "
        "Protocol section); every run records the protocol it was made under.",
        **state.bound(K.TR_PROTOCOL),
    )
with c8:
    live = st.checkbox(
        "Live test accuracy",
        value=state.default(K.TR_LIVE),
        help="Score a fixed, class-balanced subset of 500 test images about 20 times during "
        "training, for the curves below. Shown only; the run's accuracy is the whole test split, "
        "once, at the end.",
        **state.bound(K.TR_LIVE, url=False),
    )
    allow_unwhitened = st.checkbox(
        "Train on ZCA-looking images as they are",
        value=False,
        key="tr_allow_unwhitened",
        help="A set whose images look ZCA-whitened (MTT, DATM, DD-Ranking in ZCA space) is "
        "refused unless it was read with its ZCA (Distilled images: How to read this set). "
        "Tick this only if the images really are meant to be used unwhitened.",
    )

with st.expander("Label strategy (how the labels are learned from)"):
    s1, s2, s3, s4 = st.columns(4)
    with s1:
        loss_fn = st.selectbox(
            "Dense loss",
            STRATEGY_CHOICES["loss_fn"],
            help="The loss of the samples trained on the labeler's labels: soft_ce (LADD's Eq. "
            "5), kl (SRe2L/FKD, T 20), gift (GIFT), mse_gt (EDC). Hard-labelled samples keep the "
            "cross-entropy.",
            **state.bound(K.TR_LOSS_FN),
        )
    with s2:
        schedule = st.selectbox(
            "Schedule",
            STRATEGY_CHOICES["label_schedule"],
            help="constant; hald / soft_hard: HALD's phases of soft and (smoothed) hard labels; "
            "temperature: LPQLD's step schedule of the teacher temperature (with kl), "
            "calibrated: its fitted student temperature.",
            **state.bound(K.TR_SCHEDULE),
        )
    with s3:
        balance = st.selectbox(
            "Hard / dense weights",
            STRATEGY_CHOICES["balance"],
            help="fixed: both terms weigh 1 (Eq. 5); learned: one log-weight per term and seed, "
            "trained with the model (uncertainty weighting).",
            **state.bound(K.TR_BALANCE),
        )
    with s4:
        sampler = st.text_input(
            "Crops of a plain set",
            help="Crop modes on a plain set only (a label-augmented set brings its own): a "
            "sampler spec, e.g. grid:5,0.625, multiscale:3@0.75,4@0.5, random:25,seed=0. "
            "Empty: the 5 x 5 grid.",
            **state.bound(K.TR_SAMPLER),
        )

if st.button(
    "Start training", type="primary", key="tr_go", icon=":material/play_arrow:", disabled=not path
):
    with widgets.guard("Cannot start: "), st.spinner("Loading the set and planning the run"):
        cfg = TrainConfig(
            arch=arch,
            mode=mode,
            epochs=int(epochs),
            seeds=tuple(range(int(seeds))),
            trainer=trainer,
            protocol=protocol,
            model_options=supported_options(arch, {"width": int(width)}),
            loss_fn=loss_fn,
            label_schedule=schedule,
            balance=balance,
            sampler=sampler.strip() or None,
        )
        planned = tasks.plan_training_job(
            str(workspace_root()),
            str(cache.check_path(path)),
            cfg,
            allow_unwhitened=allow_unwhitened,
            source=None if source == "auto" else source,
            soft_labels=str(cache.check_path(store_path)) if store_path else None,
        )
        job = tasks.submit_training(
            planned,
            f"{mode} / {arch}",
            monitor_every=max(1, int(epochs) // 20) if live else 0,
        )
        state.put(K.TR_JOB, job.id)

# This tab's job first, then any other training a tab started (shared registry).
mine = state.get(K.TR_JOB)
widgets.job_status(mine)
for job in registry().active("train"):
    if job.id != mine:
        widgets.job_status(job.id)

runs = widgets.list_runs("train")

st.subheader("Training curves")
finished = [r for r in runs if r.status == "done" and r.train is not None]
by_id = {r.id: r for r in finished}
latest = [next((r.id for r in finished if r.mode == m), None) for m in ("baseline", "ladd")]
overlay = st.multiselect(
    "Finished runs to overlay",
    list(by_id),
    default=[i for i in latest if i is not None],
    format_func=lambda i: widgets.run_label(by_id[i]),
    **state.bound(K.TR_OVERLAY, url=False),
)
widgets.training_curves([by_id[i] for i in overlay if i in by_id])

st.subheader("Runs")
if not runs:
    st.info("No training runs yet.")
else:
    rows = []
    for r in runs:
        cfg = r.train
        rows.append(
            {
                "id": r.id,
                "label": r.label or "",
                "mode": r.mode,
                "arch": cfg.arch if cfg else None,
                "epochs": cfg.epochs if cfg else None,
                "protocol": cfg.protocol if cfg else None,
                "seeds": len(cfg.seeds) if cfg else None,
                "accuracy": None if r.accuracy_mean is None else round(100 * r.accuracy_mean, 2),
                "± std": None if r.accuracy_std is None else round(100 * r.accuracy_std, 2),
                "seconds": None if r.seconds is None else round(r.seconds, 1),
                "status": r.status,
                "started": dt.datetime.fromtimestamp(r.created).strftime("%Y-%m-%d %H:%M"),
                "set": cache.rel(r.set_path) if r.set_path else "",
            }
        )
    df = pd.DataFrame(rows)
    picked = st.dataframe(
        df, hide_index=True, on_select="rerun", selection_mode="single-row", key="tr_runs"
    )
    widgets.csv_download(df, "runs", key="tr_runs_csv")
    sel = picked.selection.rows if picked is not None else []
    if sel:
        run = runs[sel[0]]
        st.markdown(f"**Run #{run.id}** {literal(run.label or '')}: {literal(run.status)}")
        if run.error:
            widgets.error(run.error)
        loss, acc = charts.series_from_result(widgets.run_label(run), cache.run_result(run.id))
        if loss is not None or acc is not None:
            widgets.plot(
                charts.training_curves([loss] if loss else [], [acc] if acc else []),
                f"training_run{run.id}",
                key="tr_run_curves",
            )
        st.page_link(
            "../pages/5_compare.py",
            label="Compare with another run",
            icon=":material/compare:",
            query_params=widgets.compare_params(run),
        )
