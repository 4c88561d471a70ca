"""Every session-state key of the dashboard, in one place, and how widgets keep their values.

Widgets that define the current view are bound to the URL (`bind="query-params"`: the key is
the query parameter, so a view can be shared by its address) and persist for the whole session
(`persist_state="session"`: values survive page switches). Pages create such widgets with
`**state.bound(K.SUB_N)` and take their defaults from DEFAULTS, so a key and its default are
spelled once. Keys that are not widgets (job ids, one-shot flags) are listed here too.
"""

from __future__ import annotations

from typing import Any

import streamlit as st


class K:
    """Session-state keys. Widget keys double as URL query parameters: keep them short."""

    # sidebar
    FIG_FORMAT = "fig_format"
    # home
    DEMO_SOURCE = "demo_source"
    DEMO_SIZE = "demo_size"
    DEMO_DATA = "demo_data"  # a folder holding CIFAR-10 (torchvision files) for the demo
    DEMO_JOB = "_demo_job"  # id of the demo job this session started
    # 1 distilled images
    DS_FROM = "ds_from"
    DS_SET = "ds_set"
    DS_PATH = "ds_path"
    DS_PER_CLASS = "ds_per_class"
    DS_FIRST = "ds_first"  # many classes: the first class of the grid's window
    DS_CLASSES = "ds_classes"  # many classes: how many classes the grid shows
    # how to read a set from a path or an upload (ladd.sets.load_set options)
    DS_FORMAT = "ds_format"
    DS_SOURCE = "ds_source"
    DS_MEAN = "ds_mean"
    DS_STD = "ds_std"
    DS_ZCA = "ds_zca"
    DS_EXPERIMENT = "ds_exp"
    DS_SAVE_NAME = "ds_save_name"
    RR_SOURCE = "rr_source"
    RR_IPC = "rr_ipc"
    RR_SEED = "rr_seed"
    DS_UPLOADED = "_ds_uploaded"  # workspace path of the last upload
    RR_JOB = "_rr_job"
    # 2 sub-sampling
    SUB_SET = "sub_set"
    SUB_IMAGE = "sub_img"
    SUB_N = "sub_n"
    SUB_R = "sub_r"
    SUB_COMPARE = "sub_cmp"
    SUB_N2 = "sub_n2"
    SUB_CODEC = "sub_codec"
    SUB_R2 = "sub_r2"
    SUB_MEASURE = "sub_measure"  # many classes: zip the whole set to measure the overhead
    SUB_DRIFT_LABELER = "sub_dlab"  # the labeler whose labels the drift view measures
    SUB_DRIFT_EPOCH = "sub_dep"
    SUB_DRIFT_SET = "sub_dset"  # many classes: label every crop of the set for its drift
    # 3 soft labels
    SL_SET = "sl_set"
    SL_IMAGE = "sl_img"
    SL_LABELER = "sl_lab"
    SL_EPOCHS = "sl_ep"
    SL_METRIC = "sl_metric"
    SL_CLASS = "sl_class"
    SL_N = "sl_n"
    SL_R = "sl_r"
    SL_TOPK = "sl_topk"  # many classes: the classes each crop's soft label shows
    SL_WHOLE = "sl_whole"  # many classes: label every crop of the set (Fig. 5) on request
    SL_STORE = "sl_store"  # a soft-label store beside the set (ladd.stores), by path
    SL_STORE_EPOCH = "sl_sep"
    SL_STORE_BATCH = "sl_sb"
    SL_STORE_ROW = "sl_srow"
    LT_SOURCE = "lt_source"
    LT_EPOCHS = "lt_epochs"
    LT_EVERY = "lt_every"
    LT_WIDTH = "lt_width"
    LT_LIMIT = "lt_limit"
    LT_JOB = "_lt_job"
    # 4 deployment training
    TR_SET = "tr_set"
    TR_ARCH = "tr_arch"
    TR_MODE = "tr_mode"
    TR_EPOCHS = "tr_epochs"
    TR_SEEDS = "tr_seeds"
    TR_WIDTH = "tr_width"
    TR_TRAINER = "tr_trainer"
    TR_PROTOCOL = "tr_protocol"  # auto | mtt | glad | rded (ladd.training.PROTOCOLS)
    TR_LIVE = "tr_live"  # score a fixed test subset every few epochs while training
    TR_LOSS_FN = "tr_loss"  # the label strategy (ladd.strategies): dense loss, schedule, weights
    TR_SCHEDULE = "tr_sched"
    TR_BALANCE = "tr_bal"
    TR_SAMPLER = "tr_sampler"  # crops of a crop mode on a plain set (ladd.samplers spec)
    TR_STORE = "tr_store"  # a soft-label store beside the set (ladd.stores), by path: mode "store"
    TR_SOURCE = "tr_source"  # the source of the test split (auto: the set's own)
    TR_JOB = "_tr_job"
    TR_OVERLAY = "tr_overlay"  # finished runs drawn in the training curves
    # 5 compare
    CMP_A = "cmp_a"
    CMP_B = "cmp_b"
    CMP_MORE = "cmp_more"  # further runs (rows) of the CAM grid
    CMP_PICK = "cmp_pick"
    CMP_CLASS = "cmp_class"
    CMP_K = "cmp_k"
    CMP_DRAW = "cmp_draw"  # the seed of the draw when more images qualify than are shown
    CMP_METHOD = "cmp_method"
    CMP_TARGET = "cmp_target"
    CMP_SCALE = "cmp_scale"
    CMP_SORT = "cmp_sort"  # many classes: the per-class table's order (worst first)
    CMP_CONFUSIONS = "cmp_conf"  # many classes: the confusions listed per run
    # 6 sweeps
    SW_NAME = "sw_name"  # the sweep shown
    SW_CELL = "sw_cell"  # the cell whose run the Compare link opens
    # 7 results
    RS_SOURCE = "rs_source"
    RS_PART = "rs_part"
    RS_PROFILE = "rs_profile"
    RS_MODE = "rs_mode"
    RS_ARCH = "rs_arch"
    RS_DISTILLER = "rs_dist"
    RS_IPC = "rs_ipc"
    RS_PROTOCOL = "rs_protocol"
    # 8 score
    SC_PICK = "sc_pick"  # the score shown (a workspace score run or a docs/results record)
    # one-shot events this session has already reacted to
    ONCE = "_once"


DEFAULTS: dict[str, Any] = {
    K.FIG_FORMAT: "png",
    K.DEMO_SOURCE: "shapes",  # the page starts on ladd.demo.default_source() instead
    K.DEMO_SIZE: "quick",  # the page starts on ladd.demo.default_size() instead
    K.DEMO_DATA: "",
    K.DS_FROM: "workspace",
    K.DS_PER_CLASS: 10,
    K.DS_FIRST: 0,
    K.DS_CLASSES: 20,
    K.DS_FORMAT: "auto",
    K.DS_SOURCE: "auto",
    K.DS_MEAN: "",
    K.DS_STD: "",
    K.DS_ZCA: False,
    K.DS_EXPERIMENT: -1,
    K.RR_SOURCE: "shapes",
    K.RR_IPC: 10,
    K.RR_SEED: 0,
    K.SUB_IMAGE: 0,
    K.SUB_N: 5,
    K.SUB_R: 0.625,
    K.SUB_COMPARE: False,
    K.SUB_N2: 3,
    K.SUB_CODEC: "float32",
    K.SUB_R2: 0.5,
    K.SUB_MEASURE: False,
    K.SUB_DRIFT_SET: False,
    K.SUB_DRIFT_EPOCH: 10,  # the paper's labeler checkpoint, when the folder has it
    K.SL_IMAGE: 0,
    K.SL_METRIC: "class probability",
    K.SL_N: 5,
    K.SL_R: 0.625,
    K.SL_TOPK: 10,
    K.SL_WHOLE: False,
    K.SL_STORE: "",
    K.SL_STORE_EPOCH: 0,
    K.SL_STORE_BATCH: 0,
    K.SL_STORE_ROW: 0,
    K.LT_SOURCE: "shapes",
    K.LT_EPOCHS: 3,
    K.LT_EVERY: 1,
    K.LT_WIDTH: 32,
    K.LT_LIMIT: 100,
    K.TR_MODE: "ladd",
    K.TR_EPOCHS: 20,
    K.TR_SEEDS: 1,
    K.TR_WIDTH: 32,
    K.TR_TRAINER: "fast",
    K.TR_PROTOCOL: "auto",
    K.TR_LIVE: True,
    K.TR_LOSS_FN: "soft_ce",
    K.TR_SCHEDULE: "constant",
    K.TR_BALANCE: "fixed",
    K.TR_SAMPLER: "",
    K.TR_STORE: "",
    K.TR_SOURCE: "auto",
    K.CMP_PICK: "b_right_a_wrong",
    K.CMP_CLASS: 0,
    K.CMP_K: 6,
    K.CMP_DRAW: 0,
    K.CMP_METHOD: "gradcam",
    K.CMP_TARGET: "predicted",
    K.CMP_SCALE: 2,
    K.CMP_SORT: "B",
    K.CMP_CONFUSIONS: 20,
}


def bound(key: str, *, url: bool = True) -> dict[str, Any]:
    """Widget keyword arguments: the key, kept for the session, and (by default) in the URL."""
    kw: dict[str, Any] = {"key": key, "persist_state": "session"}
    if url:
        kw["bind"] = "query-params"
    return kw


def default(key: str) -> Any:
    return DEFAULTS[key]


def get(key: str, fallback: Any = None) -> Any:
    """A key's current value: session state, else its default, else `fallback`."""
    if key in st.session_state:
        return st.session_state[key]
    return DEFAULTS.get(key, fallback)


def put(key: str, value: Any) -> None:
    """Set a non-widget key, or a widget's value before that widget is drawn in this run."""
    st.session_state[key] = value


def once(event: str) -> bool:
    """True the first time this session asks about `event` (e.g. "rerun:train-3"), then False."""
    done: set[str] = st.session_state.setdefault(K.ONCE, set())
    if event in done:
        return False
    done.add(event)
    return True
