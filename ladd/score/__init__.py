"""How good is a set, and how much of it is its labels? (`ladd score`)

    spec = ScoreSpec("sets/dm_ipc10", reading=SetReading(source="cifar10"), labeler=LAB,
                     epochs=300, seeds=(0, 1, 2, 3, 4))
    plan = plan_score(spec, workspace)       # every training it needs; which are recorded; cost
    result = run_score(plan, workspace)      # trains the rest (serial or Ray), records, scores
    print("\\n".join(result.lines()))

The set is trained under the protocols that matter for it, each with its own random-real twin
drawn and trained by the same pipeline (ladd.sets.random_real at the set's IPC, one draw per
seed, as DD-Ranking draws one per evaluation run):

    shipped  its own labels as shipped: its soft-label store replayed (label mode "store"), its
             own soft labels (DATM's), or its hard labels when it has nothing else
    hard     hard labels only, with the protocol's augmentation
    no_aug   hard labels only, without augmentation
    ladd     LADD's dense labels from a labeler (N x N crops), with the protocol's augmentation

and, for the hard-label recovery, the whole train split (`full_epochs`; once by default, its
accuracy then serving every pair as DD-Ranking's one cached full-data number does,
ddranking/utils/train_and_eval.py:15-18) or a full-data accuracy the user states
(`full_accuracy`, with where it comes from). Every training is one seed, one
recorded "train" run (ladd.pipeline.record_train), named by its plan key: a score run again
trains only what is not recorded yet (resumable), and a cell killed mid-training resumes from
its checkpoint. Accuracy is the last epoch's, tested once (nothing is chosen on the test set).

Scores, as DD-Ranking defines them (NUS-HPC-AI-Lab/DD-Ranking, ddranking/metrics/), per seed
i (the i-th synthetic run paired with the i-th random run), then mean and std over seeds:

    HLR  = full accuracy - hard-label accuracy            (hard_label.py:380)
    IOR  = hard-label accuracy - random's, same protocol  (hard_label.py:381)
    LRS  = (e^a - e^-1) / (e - e^-1), a = 0.5 IOR - 0.5 HLR   (hard_label.py:382-383)
    ARS  = (e^b - e^-1) / (e - e^-1), b = 0.5 (IOR with augmentation) + 0.5 (IOR without)
                                                          (aug_robust.py:577-580)
    soft LRS: IOR of the soft labels (LADD's dense labels on both), HLR as above
                                                          (soft_label.py:561-564)

Units: DD-Ranking's accuracies are percentages (utils/meter.py:168, `correct_k * (100.0 /
batch_size)`), so its exponent takes percentage points: a 20-point HLR puts LRS near its floor
-e^-1 / (e - e^-1) = -0.157. Both are reported: `lrs`/`ars` with percentage points as its code
computes them, `lrs_fraction`/`ars_fraction` with accuracies as fractions in [0, 1] (the bounded
reading of its formula). Stds are sample stds (ddof 1), as for accuracies here (DD-Ranking's
np.std is ddof 0). Label bytes: the bytes each variant's labels take as stored (a hard label as
one byte, a class index below 256; a store's label payload over all its epochs; LADD's dense
labels in their codec plus the hard labels); accuracy per label byte is percentage points per
KiB.

    metrics.py   DD-Ranking's scores (squash, dd_ranking_scores) and a score's tables
    planning.py  ScoreSpec -> ScorePlan (plan_score): the trainings, what is recorded, the cost
    running.py   run_score: train what is left, record, score (ScoreResult)
"""

from ladd.score.metrics import (
    SCORE_NAMES,
    SUBJECTS,
    VARIANTS,
    dd_ranking_scores,
    score_metrics,
    score_rows,
    squash,
)
from ladd.score.planning import ScoreCell, ScorePlan, ScoreSpec, plan_score
from ladd.score.running import ScoreResult, run_score

__all__ = [
    "SCORE_NAMES",
    "SUBJECTS",
    "VARIANTS",
    "ScoreCell",
    "ScorePlan",
    "ScoreResult",
    "ScoreSpec",
    "dd_ranking_scores",
    "plan_score",
    "run_score",
    "score_metrics",
    "score_rows",
    "squash",
]
