"""Model-level fusion with SVC modalities: fit time and accuracy against scikit-learn.

A classifier without ``predict_proba`` (SVC, LinearSVC) has to be calibrated
before its probabilities are fused. mmfeat's late fusion and stacking do it
on the out-of-fold decision values of the folds they run anyway (``cv + 1``
SVC fits per modality). The peers are what a scikit-learn user writes for
the same two-modality problem, each modality a column selection + scaler +
SVC:

- soft voting: ``VotingClassifier(voting="soft")`` over
  ``SVC(probability=True)`` (Platt scaling: an internal 5-fold CV per SVC),
  equal weights (scikit-learn cannot learn them);
- stacking: ``StackingClassifier`` (``stack_method="auto"``: the SVCs'
  decision values, ``cv=5``) with a logistic regression on top.

Data: scikit-learn's digits, the left and right halves of each 8x8 image as
two modalities (``--dataset digits``), 50/50 stratified split, seed 0; or
the USPS images of the shared data split the same way (``--dataset usps``,
7,291 training images). Median of ``--repeat`` fits (default 3).

Run: ``python benchmarks/bench_fusion_calibration.py`` (about 1 minute on 2
cores for digits).
"""

import numpy as np
import pandas as pd
from _common import median_time, parser, report, report_table
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_digits
from sklearn.ensemble import StackingClassifier, VotingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from mmfeat.fusion import LateFusionClassifier, ModalityStackingClassifier


def _data(name):
    if name == "digits":
        X, y = load_digits(return_X_y=True)
        side = 8
    else:
        from mmfeat.datasets import load_usps

        usps = load_usps()
        X = np.asarray(usps.images, dtype=float).reshape(len(usps.images), -1)
        y = np.asarray(usps.target)
        side = 16
    cols = [f"p{i}" for i in range(X.shape[1])]
    frame = pd.DataFrame(X, columns=cols)
    left = [c for i, c in enumerate(cols) if i % side < side // 2]
    right = [c for c in cols if c not in left]
    return frame, y, left, right


def _svc(cols, **kw):
    pick = ColumnTransformer([("m", "passthrough", cols)])
    return make_pipeline(pick, StandardScaler(), SVC(**kw))


def main():
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=["digits", "usps"], default="digits")
    p.set_defaults(repeat=3)
    args = p.parse_args()
    X, y, left, right = _data(args.dataset)
    Xtr, Xte, ytr, yte = train_test_split(
        X, y, test_size=0.5, stratify=y, random_state=0
    )

    def mods():
        return [
            ("left", make_pipeline(StandardScaler(), SVC()), left),
            ("right", make_pipeline(StandardScaler(), SVC()), right),
        ]

    models = {
        "late fusion (learned weights)": (
            lambda: LateFusionClassifier(mods(), weights="learn", cv=5),
            lambda: VotingClassifier(
                [
                    ("left", _svc(left, probability=True, random_state=0)),
                    ("right", _svc(right, probability=True, random_state=0)),
                ],
                voting="soft",
            ),
            "VotingClassifier(soft, SVC(probability=True))",
        ),
        "stacking": (
            lambda: ModalityStackingClassifier(mods(), cv=5),
            lambda: StackingClassifier(
                [("left", _svc(left)), ("right", _svc(right))],
                final_estimator=LogisticRegression(max_iter=1000),
                cv=5,
            ),
            "StackingClassifier(SVC, cv=5)",
        ),
    }
    timing, accuracy = [], []
    for case, (ours, peer, peer_name) in models.items():
        t_ours = median_time(lambda: ours().fit(Xtr, ytr), repeat=args.repeat)
        t_peer = median_time(lambda: peer().fit(Xtr, ytr), repeat=args.repeat)
        timing.append((f"{case} fit", t_ours, t_peer, len(Xtr), peer_name))
        accuracy.append(
            dict(
                case=case,
                mmfeat=ours().fit(Xtr, ytr).score(Xte, yte),
                peer=peer().fit(Xtr, ytr).score(Xte, yte),
                peer_name=peer_name,
            )
        )
    report(
        f"Fusion of two SVC modalities ({args.dataset} halves, "
        f"{len(Xtr)} training rows)",
        timing,
        args,
        unit="rows/s",
    )
    report_table(
        "Held-out accuracy",
        [
            ("case", "case", ""),
            ("mmfeat", "mmfeat", ".4f"),
            ("peer", "peer", ".4f"),
            ("peer_name", "peer", ""),
        ],
        accuracy,
        argparse_ns(args),
    )


def argparse_ns(args):
    """The same options without ``--json`` (one JSON file: the timings)."""
    ns = type(args)(**vars(args))
    ns.json = None
    return ns


if __name__ == "__main__":
    main()
