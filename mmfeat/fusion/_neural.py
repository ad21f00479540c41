"""Deep fusion: one network over every modality, trained end to end."""

import math
import numbers
from typing import NamedTuple

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.base import ClassifierMixin, clone
from sklearn.model_selection import ShuffleSplit, StratifiedShuffleSplit
from sklearn.utils import check_random_state, get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

from mmfeat.exceptions import InputError, ParameterError
from mmfeat.fusion._modality import (
    TripleParams,
    in_callers_rows,
    nan_rows,
    raise_all_missing,
    take_rows,
    validate_modalities,
)
from mmfeat.utils._sklearn_compat import (
    Integral,
    Interval,
    Real,
    StrOptions,
    _BaseComposition,
    _fit_context,
)
from mmfeat.utils._state import CheckedStateMixin, state_error
from mmfeat.utils._tables import absent_items, check_table, select_columns
from mmfeat.utils._torch import import_torch, resolve_device, torch_threads
from mmfeat.utils._validation import check_class_target

__all__ = ["NeuralFusionClassifier"]

# what a model file may ask for: hidden units, one modality's width, classes
# and weights in all
_MAX_HIDDEN = 1 << 14
_MAX_WIDTH = 1 << 24
_MAX_CLASSES = 1 << 20
_MAX_WEIGHTS = 1 << 30
# fewer validation rows than this: no early stopping (the loss of a handful
# of rows says nothing); every epoch trains on every row
_MIN_VALIDATION_ROWS = 5


def _net():
    """The torch side (imported on first use; says what to install without it)."""
    import_torch("NeuralFusionClassifier")
    from mmfeat.fusion import _neural_net

    return _neural_net


def weight_shapes(spec):
    """Name and shape of every weight of the network ``spec`` describes.

    Needs no torch: a model file's weights are checked against these before
    any is handed to torch. ``spec`` holds ``inputs`` (``(kind, width)`` of
    each modality, ``kind`` "dense" or "sparse"), ``hidden_size``,
    ``fusion`` and ``n_classes``.
    """
    h = spec["hidden_size"]
    m = len(spec["inputs"])
    shapes = {}
    for i, (kind, width) in enumerate(spec["inputs"]):
        e = f"encoders.{i}."
        shapes[e + "first.weight"] = (width, h) if kind == "sparse" else (h, width)
        shapes[e + "bias"] = (h,)
        for norm in ("norm1", "norm2"):
            shapes[e + norm + ".weight"] = (h,)
            shapes[e + norm + ".bias"] = (h,)
        shapes[e + "second.weight"] = (h, h)
        shapes[e + "second.bias"] = (h,)
    shapes["missing"] = (m, h)
    if spec["fusion"] == "gated":
        shapes["gate"] = (m, h)
        shapes["gate_bias"] = (m,)
        width = h
    else:
        width = m * h
    if spec.get("wide"):
        c = spec["n_classes"]
        for i, (kind, width_in) in enumerate(spec["inputs"]):
            shapes[f"wide.{i}.weight"] = (
                (width_in, c) if kind == "sparse" else (c, width_in)
            )
        shapes["wide_missing"] = (m, c)
    shapes["head.1.weight"] = (h, width)
    shapes["head.1.bias"] = (h,)
    shapes["head.4.weight"] = (spec["n_classes"], h)
    shapes["head.4.bias"] = (spec["n_classes"],)
    return shapes


def _as_features(Xt, name):
    """A modality's features as a float array or CSR matrix."""
    if sp.issparse(Xt):
        return sp.csr_matrix(Xt, dtype=np.float64)
    if isinstance(Xt, (pd.DataFrame, pd.Series)):
        Xt = Xt.to_numpy()
    try:
        arr = np.asarray(Xt, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(
            f"modality {name!r} gives features that are not numbers ({exc}); give "
            "it a transformer (an mmfeat extractor) instead of 'passthrough'",
            source=name,
        ) from None
    if arr.ndim == 1:
        return arr.reshape(-1, 1)
    return arr.reshape(arr.shape[0], -1) if arr.ndim != 2 else arr


class TrainableBlock(NamedTuple):
    """A modality whose encoder's input is computed by a backbone being trained.

    ``images`` holds the decoded items of the rows that have them,
    ``index[row]`` a row's position among them (-1: absent), and
    ``forward(batch, train)`` the backbone's features (``width`` wide) of a
    uint8 batch; ``module``'s parameters train with the network.
    """

    images: np.ndarray
    index: np.ndarray
    forward: object
    module: object
    width: int

    @property
    def shape(self):
        return (len(self.index), self.width)

    def __getitem__(self, rows):
        return TrainableBlock(
            self.images, self.index[rows], self.forward, self.module, self.width
        )


class NeuralFusionClassifier(
    TripleParams, CheckedStateMixin, ClassifierMixin, _BaseComposition
):
    """Deep fusion: one network with an encoder per modality, trained end to end.

    Each ``(name, transformer, columns)`` modality turns its columns into
    features (HOG, an HSV histogram, TF-IDF, MFCC, CNN embeddings, ... or
    numeric columns as they are), as in :class:`MultimodalFuser`. One
    network then learns from all of them at once:

    - an **encoder** per modality: a layer to ``hidden_size`` units, layer
      normalisation, GELU, dropout, a second layer, layer normalisation,
      GELU. Dense features are standardised first (training statistics);
      sparse ones (TF-IDF) go through a sparse first layer (an
      ``EmbeddingBag``), so a 50,000-word vocabulary is never densified;
    - a learnt **missing embedding** per modality that stands in for the
      encoder's output in a row without that modality (missing or
      unreadable items, NaN features), rather than zeros;
    - a **fusion layer**: the embeddings side by side (``"concat"``) or
      their weighted sum with per-row weights (``"gated"``), which
      :meth:`modality_weights` shows;
    - a **head**: dropout, a layer, GELU, dropout, the class logits.

    **Modality dropout**: during training each modality of each row is
    replaced by its missing embedding with probability
    ``modality_dropout`` (a row keeps at least one it has), so the network
    learns to score rows that lack a modality at predict time, and does
    not lean on one modality alone.

    Training: AdamW on the (class- and sample-weighted) cross-entropy, in
    mini-batches, with early stopping on a stratified validation split
    taken from the training rows; the weights of the best validation epoch
    are kept. On the CPU the result is reproducible for a given
    ``random_state`` and ``n_jobs``.

    Needs PyTorch (the ``cnn`` extra); runs on the GPU when torch sees one
    (``device="auto"``). The fitted weights are kept as float32 NumPy
    arrays (``network_weights_``), so the model pickles, saves with
    :func:`mmfeat.save` and scores on a CPU-only machine; prediction builds
    the network from them at each call and changes no attribute.

    Parameters
    ----------
    modalities : list of (str, transformer, columns)
        The modalities: a name, a transformer (an mmfeat extractor, a
        Pipeline, ...) or ``"passthrough"`` (numeric columns as they are),
        and the columns it reads (a column name gives it a 1-D column of
        items, as mmfeat's extractors take). A transformer that learns from
        labels (``CNNExtractor(fine_tune_epochs=5)``, a supervised
        selector) is fitted on ``y``. Set nested parameters as
        ``<name>__<param>``.
    fusion : {"concat", "gated"}, default="concat"
        How the modality embeddings are fused.
    wide : bool, default=True
        Also add a linear map of each modality's features straight to the
        class logits (a "wide and deep" network [4]_): the network then
        contains a linear model of every modality, which a small training
        set can fit before the deep part overfits.
    end_to_end : bool, default=False
        Train the backbone of every modality whose transformer offers one
        (:meth:`CNNExtractor.trainable_encoder
        <mmfeat.features.image.CNNExtractor.trainable_encoder>`) together
        with the network, on the fusion's loss: its images are decoded
        once, flipped and shifted at random while training, and the fitted
        extractor in ``transformers_`` holds the trained backbone. Without
        it, such a transformer is fitted on its own (fine-tuned on ``y``
        when it is told to) and frozen.
    hidden_size : int, default=256
        Units of every encoder layer and of the head.
    dropout : float, default=0.2
        Dropout inside the encoders and the head.
    modality_dropout : float, default=0.25
        Probability of masking a modality of a training row (only with two
        modalities or more).
    learning_rate : float, default=1e-3
        AdamW learning rate.
    weight_decay : float, default=1e-2
        AdamW (decoupled) weight decay.
    batch_size : int, default=64
        Rows per training step (and four times that per predict batch).
    max_epochs : int, default=100
        Passes over the training rows at most.
    early_stopping : bool, default=True
        Keep ``validation_fraction`` of the training rows apart (stratified)
        and stop when their accuracy has not improved (nor, at equal
        accuracy, their loss by ``tol``) for ``n_iter_no_change`` epochs;
        the best epoch's weights are kept.
        With fewer than 5 validation rows, every epoch runs on every row.
    validation_fraction : float, default=0.1
        Share of the training rows kept for early stopping.
    n_iter_no_change : int, default=10
        Epochs without improvement before training stops.
    tol : float, default=1e-4
        Improvement of the validation loss that counts.
    class_weight : dict, "balanced" or None, default=None
        Weights of the classes in the loss: ``"balanced"`` is
        ``n_samples / (n_classes * count)``.
    device : {"auto", "cpu", "cuda"} or "cuda:N", default="auto"
        Where the network trains and predicts; resolved at each call.
    all_missing : {"raise", "prior"}, default="raise"
        Rows where every modality is missing or unreadable: raise an
        :class:`~mmfeat.InputError` naming them, or score them with the
        training class prior.
    n_jobs : int, default=None
        torch CPU threads during ``fit`` and prediction (restored after);
        ``None`` means 1 unless a joblib context says otherwise.
    random_state : int, RandomState instance or None, default=None
        Seeds the initialisation, the validation split, the shuffling, the
        dropout and the modality dropout (torch's global random state is
        left as it was).
    warm_start : bool, default=False
        A second ``fit`` continues from the fitted network and transformers
        (same modalities, features and classes) instead of starting again.
    verbose : int, default=0
        Print the training and validation loss of every epoch.

    Attributes
    ----------
    classes_ : ndarray
        Class labels.
    class_prior_ : ndarray
        Training class frequencies.
    modality_names_ : list of str
        Modality names in order.
    transformers_ : list of (str, transformer, columns)
        The fitted transformers (``"passthrough"`` as it is).
    named_transformers_ : dict
        The same, by modality name.
    network_spec_ : dict
        What the network is: each modality's input (``"dense"`` or
        ``"sparse"``, width), ``hidden_size``, ``dropout``, ``fusion``,
        ``n_classes``.
    network_weights_ : dict of str to ndarray
        The trained weights (float32), by parameter name.
    feature_scaling_ : list of (ndarray, ndarray) or None
        Mean and scale of each dense modality's features (None: sparse).
    loss_curve_ : list of float
        Training loss of each epoch.
    validation_loss_curve_ : list of float
        Validation loss of each epoch (empty without early stopping).
    validation_scores_ : list of float
        Validation accuracy of each epoch (empty without early stopping).
    best_epoch_ : int
        The epoch whose weights were kept (0-based): the best validation
        accuracy, the lowest validation loss among equals, as
        scikit-learn's ``MLPClassifier`` stops on the validation score.
    n_iter_ : int
        Epochs run in the last ``fit``.
    n_training_rows_ : dict of str to int
        Training rows that had each modality.
    n_features_in_ : int
        Number of columns of ``X``.
    feature_names_in_ : ndarray of str
        Column names, when ``X`` was a DataFrame.

    See Also
    --------
    LateFusionClassifier : One classifier per modality, probabilities mixed.
    ModalityStackingClassifier : A meta-model on the modalities' probabilities.
    FusionSearchCV : Chooses among all of them by cross-validation.

    Notes
    -----
    The per-row modality weights of ``fusion="gated"`` say how much each
    modality's embedding counts in the fused one; they are an explanation
    of the network, not a calibrated measure of a modality's reliability.

    References
    ----------
    .. [1] N. Neverova, C. Wolf, G. Taylor and F. Nebout, "ModDrop: adaptive
       multi-modal gesture recognition", IEEE TPAMI 2016 (modality dropout).
    .. [2] J. Arevalo, T. Solorio, M. Montes-y-Gomez and F. A. Gonzalez,
       "Gated Multimodal Units for Information Fusion", ICLR Workshop 2017.
    .. [3] I. Loshchilov and F. Hutter, "Decoupled Weight Decay
       Regularization", ICLR 2019 (AdamW).
    .. [4] H.-T. Cheng et al., "Wide & Deep Learning for Recommender
       Systems", DLRS 2016.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 40)
    >>> table = pd.DataFrame({"a": y + rng.normal(0, 0.5, 80),
    ...                       "b": y + rng.normal(0, 2.0, 80)})
    >>> model = NeuralFusionClassifier(
    ...     [("a", "passthrough", ["a"]), ("b", "passthrough", ["b"])],
    ...     hidden_size=16, random_state=0,
    ... ).fit(table, y)  # doctest: +SKIP
    >>> model.score(table, y) > 0.8  # doctest: +SKIP
    True
    """

    _required_parameters = ["modalities"]
    _triples = "modalities"

    _parameter_constraints = {
        # (name, transformer, columns) triples: _validate_modalities says
        # what is wrong with an entry
        "modalities": [list, tuple],
        "fusion": [StrOptions({"concat", "gated"})],
        "wide": ["boolean"],
        "end_to_end": ["boolean"],
        "hidden_size": [Interval(Integral, 1, _MAX_HIDDEN, closed="both")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "modality_dropout": [Interval(Real, 0, 1, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "device": [str],
        "all_missing": [StrOptions({"raise", "prior"})],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        modalities,
        *,
        fusion="concat",
        wide=True,
        end_to_end=False,
        hidden_size=256,
        dropout=0.2,
        modality_dropout=0.25,
        learning_rate=1e-3,
        weight_decay=1e-2,
        batch_size=64,
        max_epochs=100,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        class_weight=None,
        device="auto",
        all_missing="raise",
        n_jobs=None,
        random_state=None,
        warm_start=False,
        verbose=0,
    ):
        self.modalities = modalities
        self.fusion = fusion
        self.wide = wide
        self.end_to_end = end_to_end
        self.hidden_size = hidden_size
        self.dropout = dropout
        self.modality_dropout = modality_dropout
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.class_weight = class_weight
        self.device = device
        self.all_missing = all_missing
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose

    @property
    def named_transformers_(self):
        """The fitted transformers by modality name."""
        check_is_fitted(self, "transformers_")
        return {name: trans for name, trans, _ in self.transformers_}

    # -- features ------------------------------------------------------------------
    def _blocks(self, X, y=None, *, fit):
        """Each modality's network input, and which rows have it.

        Returns ``(blocks, present)``: per modality a float32 array (dense,
        standardised) or CSR matrix (sparse) with one row per row of ``X``
        (zeros where absent), and a bool array (n_samples, n_modalities).
        ``fit`` fits the transformers (on the rows whose items are present)
        and the scaling, and returns them as a third element.
        """
        n = X.shape[0]
        source = self.modalities if fit else self.transformers_
        blocks, present, fitted, scaling = [], [], [], []
        for m, (name, trans, cols) in enumerate(source):
            Xm = select_columns(X, cols)
            rows = np.flatnonzero(~absent_items(Xm))
            part = take_rows(Xm, rows)
            trainable = (
                fit
                and self.end_to_end
                and not isinstance(trans, str)
                and hasattr(trans, "trainable_encoder")
            )
            with in_callers_rows(rows, None, name):
                if isinstance(trans, str):  # "passthrough"
                    Xt = part if len(rows) else None
                elif trainable and len(rows):
                    trans = clone(trans).fit(part, y[rows])
                    images, ok, forward, module = trans.trainable_encoder(part)
                elif fit:
                    trans = clone(trans)
                    Xt = trans.fit_transform(part, y[rows]) if len(rows) else None
                else:
                    Xt = trans.transform(part) if len(rows) else None
            if trainable and len(rows):
                # the backbone trains with the network: its input is the
                # decoded images, its output the encoder's features
                used = rows[ok]
                if not len(used):
                    raise InputError(
                        "no training row has this modality (every item is missing "
                        "or unreadable)",
                        source=name,
                    )
                width = len(trans.get_feature_names_out())
                index = np.full(n, -1, dtype=np.int64)
                index[used] = np.arange(len(used))
                blocks.append(TrainableBlock(images[ok], index, forward, module, width))
                mask = np.zeros(n, dtype=bool)
                mask[used] = True
                present.append(mask)
                fitted.append((name, trans, cols))
                scaling.append((np.zeros(width), np.ones(width)))
                continue
            if Xt is None and fit:
                raise InputError(
                    "no training row has this modality (every item is missing)",
                    source=name,
                )
            if Xt is None:  # no row has it here
                kind, width = self.network_spec_["inputs"][m]
                Xt = (sp.csr_matrix if kind == "sparse" else np.zeros)((0, width))
            Xt = _as_features(Xt, name)
            ok = ~nan_rows(Xt) if Xt.shape[0] else np.zeros(0, dtype=bool)
            used = rows[ok]
            Xt = Xt[np.flatnonzero(ok)]
            mask = np.zeros(n, dtype=bool)
            mask[used] = True
            if fit and not len(used):
                raise InputError(
                    "no training row has this modality (every item is missing or "
                    "unreadable)",
                    source=name,
                )
            if fit:
                kind = "sparse" if sp.issparse(Xt) else "dense"
                width = Xt.shape[1]
            else:
                kind, width = self.network_spec_["inputs"][m]
                if Xt.shape[1] != width:
                    raise InputError(
                        f"modality {name!r} gives {Xt.shape[1]} features but the "
                        f"network was trained on {width}",
                        source=name,
                    )
            if kind == "sparse":
                Xt = sp.csr_matrix(Xt, dtype=np.float32)
                Xt.data[~np.isfinite(Xt.data)] = 0.0
                lift = sp.csr_matrix(
                    (np.ones(len(used), np.float32), (used, np.arange(len(used)))),
                    shape=(n, len(used)),
                )
                block = (lift @ Xt).tocsr()
                scale = None
            else:
                Xt = Xt.toarray() if sp.issparse(Xt) else Xt
                if fit:
                    mean = Xt.mean(axis=0) if len(Xt) else np.zeros(width)
                    std = Xt.std(axis=0) if len(Xt) else np.ones(width)
                    std[~(std > 1e-12)] = 1.0
                    scale = (mean, std)
                else:
                    scale = self.feature_scaling_[m]
                block = np.zeros((n, width), dtype=np.float32)
                block[used] = (Xt - scale[0]) / scale[1]
            blocks.append(block)
            present.append(mask)
            fitted.append((name, trans, cols))
            scaling.append(scale)
        present = np.stack(present, axis=1)
        if fit:
            return blocks, present, (fitted, scaling)
        return blocks, present

    # -- fit -------------------------------------------------------------------------
    def _class_weights(self, y_enc, n_classes):
        if self.class_weight is None:
            return None
        counts = np.bincount(y_enc, minlength=n_classes).astype(np.float64)
        if isinstance(self.class_weight, str):
            w = np.where(
                counts > 0, len(y_enc) / (n_classes * np.maximum(counts, 1)), 0
            )
            return w
        w = np.ones(n_classes)
        unknown = set(self.class_weight) - set(self.classes_.tolist())
        if unknown:
            raise ParameterError(
                f"class_weight names classes {sorted(map(str, unknown))} that are "
                "not in y"
            )
        for label, value in self.class_weight.items():
            if not (
                isinstance(value, numbers.Real) and math.isfinite(value) and value >= 0
            ):
                raise ParameterError(
                    f"class_weight of {label!r} must be a finite number >= 0; got "
                    f"{value!r}"
                )
            w[np.searchsorted(self.classes_, label)] = float(value)
        return w

    def _split(self, usable, y_enc, seed):
        """Training and validation rows (positions) among ``usable`` rows."""
        n_val = round(self.validation_fraction * len(usable))
        if not self.early_stopping or n_val < _MIN_VALIDATION_ROWS:
            return usable, usable[:0]
        labels = y_enc[usable]
        counts = np.bincount(labels)
        counts = counts[counts > 0]
        stratify = counts.min() >= 2 and n_val >= len(counts)
        stratify = stratify and len(usable) - n_val >= len(counts)
        splitter = (StratifiedShuffleSplit if stratify else ShuffleSplit)(
            n_splits=1, test_size=n_val, random_state=seed
        )
        train, val = next(splitter.split(np.zeros((len(usable), 1)), labels))
        return usable[np.sort(train)], usable[np.sort(val)]

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, sample_weight=None):
        """Fit the transformers, then train the network.

        Parameters
        ----------
        X : DataFrame
            The table, with every modality's columns.
        y : array-like of shape (n_samples,)
            Class labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Weight of each row in the loss.

        Returns
        -------
        self : NeuralFusionClassifier
        """
        nn = _net()
        names = validate_modalities(self.modalities, "modalities", "transformer")
        warm = self.warm_start and hasattr(self, "network_weights_")
        X = check_table(self, X, reset=not warm)
        y = check_class_target(self, y)
        if X.shape[0] != len(y):
            raise ValueError(
                f"Found input variables with inconsistent numbers of samples: X has "
                f"{X.shape[0]} rows, y has {len(y)}"
            )
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, np.zeros((len(y), 1)))
            if not (sample_weight > 0).any():
                raise ValueError(
                    "Sample weights must contain at least one non-zero number."
                )
        classes = np.unique(y)
        weighted = y if sample_weight is None else y[sample_weight > 0]
        if len(np.unique(weighted)) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in the "
                "data (with a positive sample weight), but the data contains "
                f"only one class: {np.unique(weighted)[0]!r}"
            )
        if warm:
            if names != self.modality_names_:
                raise ParameterError(
                    f"warm_start=True continues a fit on modalities "
                    f"{self.modality_names_}; got {names}. Set warm_start=False"
                )
            unknown = set(classes.tolist()) - set(self.classes_.tolist())
            if unknown:
                raise ParameterError(
                    f"warm_start=True continues a fit on classes "
                    f"{self.classes_.tolist()}; y has new classes "
                    f"{sorted(map(str, unknown))}. Set warm_start=False"
                )
            blocks, present = self._blocks(X, fit=False)
            spec = self.network_spec_
        else:
            self.classes_ = classes
            blocks, present, (fitted, scaling) = self._blocks(X, y, fit=True)
            spec = {
                "inputs": [
                    ("sparse" if sp.issparse(b) else "dense", int(b.shape[1]))
                    for b in blocks
                ],
                "hidden_size": int(self.hidden_size),
                "dropout": float(self.dropout),
                "fusion": self.fusion,
                "n_classes": len(classes),
                "wide": bool(self.wide),
            }
        y_enc = np.searchsorted(self.classes_, y)
        counts = np.bincount(y_enc, weights=sample_weight, minlength=len(self.classes_))
        cw = self._class_weights(y_enc, len(self.classes_))
        row_weight = (
            np.ones(len(y), np.float32)
            if sample_weight is None
            else sample_weight.astype(np.float32)
        )
        usable = np.flatnonzero(present.any(axis=1) & (row_weight > 0))
        seed = int(
            check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        )
        train_rows, val_rows = self._split(usable, y_enc, seed)
        device = resolve_device(self.device)
        torch = nn.torch
        with torch_threads(self.n_jobs, device):
            net = nn.build_network(
                spec, self.network_weights_ if warm else None, seed=seed
            )
            curve, val_curve, val_scores, best = nn.train_network(
                net,
                blocks,
                present,
                y_enc.astype(np.int64),
                row_weight,
                class_weight=None
                if cw is None
                else torch.tensor(cw, dtype=torch.float32),
                train_rows=train_rows,
                val_rows=val_rows,
                max_epochs=self.max_epochs,
                batch_size=self.batch_size,
                learning_rate=self.learning_rate,
                weight_decay=self.weight_decay,
                modality_dropout=self.modality_dropout,
                n_iter_no_change=self.n_iter_no_change,
                tol=self.tol,
                seed=seed,
                device=device,
                verbose=self.verbose,
            )
        if not warm:
            self.transformers_ = fitted
            self.feature_scaling_ = scaling
            self.network_spec_ = spec
            self.modality_names_ = names
            self.class_prior_ = counts / counts.sum()
        self.network_weights_ = nn.network_weights(net)
        self.loss_curve_ = curve
        self.validation_loss_curve_ = val_curve
        self.validation_scores_ = val_scores
        self.best_epoch_ = best
        self.n_iter_ = len(curve)
        self.n_training_rows_ = dict(zip(names, present.sum(axis=0).tolist()))
        return self

    # -- predict -------------------------------------------------------------------
    def _forward(self, X):
        """Probabilities, presence and modality weights of every row of ``X``."""
        check_is_fitted(self, "network_weights_")
        nn = _net()
        X = check_table(self, X, reset=False)
        blocks, present = self._blocks(X, fit=False)
        n = X.shape[0]
        proba = np.tile(self.class_prior_, (n, 1))
        weights = np.full((n, len(self.modality_names_)), np.nan)
        some = np.flatnonzero(present.any(axis=1))
        empty = np.flatnonzero(~present.any(axis=1))
        if len(empty) and self.all_missing == "raise":
            raise_all_missing(empty, self.modality_names_)
        if len(some):
            device = resolve_device(self.device)
            with torch_threads(self.n_jobs, device):
                net = nn.build_network(self.network_spec_, self.network_weights_)
                p, w = nn.predict_batches(
                    net,
                    [b[some] for b in blocks],
                    present[some],
                    4 * self.batch_size,
                    device,
                )
            proba[some] = p
            if w is not None:
                weights[some] = w
        return proba, present, weights

    def predict_proba(self, X):
        """Class probabilities of each row.

        Parameters
        ----------
        X : DataFrame
            The table, with every modality's columns.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``. Rows missing some modalities are
            scored from the rest (their missing embeddings stand in).
        """
        return self._forward(X)[0]

    def predict(self, X):
        """Predicted class of each row.

        Parameters
        ----------
        X : DataFrame
            The table, with every modality's columns.

        Returns
        -------
        y : ndarray of shape (n_samples,)
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    def predict_proba_with_presence(self, X):
        """Class probabilities and which modalities each row had.

        Parameters
        ----------
        X : DataFrame
            The table, with every modality's columns.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        presence : DataFrame of bool, shape (n_samples, n_modalities)
            True where the row had the modality (``modality_names_`` order).
        """
        proba, present, _ = self._forward(X)
        return proba, pd.DataFrame(present, columns=list(self.modality_names_))

    def _gated(self):
        check_is_fitted(self, "network_spec_")
        if self.network_spec_["fusion"] != "gated":
            raise AttributeError(
                "modality_weights needs fusion='gated' (this network concatenates "
                "its modality embeddings)"
            )
        return True

    @available_if(_gated)
    def modality_weights(self, X):
        """Each row's fusion weights of the modalities (``fusion="gated"``).

        Parameters
        ----------
        X : DataFrame
            The table, with every modality's columns.

        Returns
        -------
        weights : DataFrame of shape (n_samples, n_modalities)
            Rows sum to 1; a modality a row lacks has the weight of its
            missing embedding. NaN rows where every modality is missing.
        """
        _, _, weights = self._forward(X)
        return pd.DataFrame(weights, columns=list(self.modality_names_))

    # -- state -------------------------------------------------------------------------
    def _check_fitted_state(self):
        names = self.modality_names_
        spec = self.network_spec_
        if not isinstance(spec, dict) or set(spec) != {
            "inputs",
            "hidden_size",
            "dropout",
            "fusion",
            "n_classes",
            "wide",
        }:
            raise state_error(self, f"network_spec_={spec!r} is not a network spec")
        inputs = spec["inputs"]
        if not isinstance(inputs, (list, tuple)) or len(inputs) != len(names):
            raise state_error(self, f"network inputs {inputs!r} for modalities {names}")
        for entry in inputs:
            if not (
                isinstance(entry, (list, tuple))
                and len(entry) == 2
                and entry[0] in ("dense", "sparse")
                and isinstance(entry[1], (int, np.integer))
                and 1 <= entry[1] <= _MAX_WIDTH
            ):
                raise state_error(self, f"network input {entry!r}")
        h = spec["hidden_size"]
        c = spec["n_classes"]
        for key, value, top in (
            ("hidden_size", h, _MAX_HIDDEN),
            ("n_classes", c, _MAX_CLASSES),
        ):
            if not (isinstance(value, (int, np.integer)) and 1 <= value <= top):
                raise state_error(self, f"network_spec_[{key!r}]={value!r}")
        if spec["fusion"] not in ("concat", "gated"):
            raise state_error(self, f"network fusion {spec['fusion']!r}")
        classes = np.asarray(self.classes_)
        prior = np.asarray(self.class_prior_)
        if classes.ndim != 1 or len(classes) != c or prior.shape != classes.shape:
            raise state_error(
                self,
                f"classes_ {classes.shape}, class_prior_ {prior.shape}, {c} outputs",
            )
        want = weight_shapes(spec)
        if sum(math.prod(s) for s in want.values()) > _MAX_WEIGHTS:
            raise state_error(
                self, f"the network spec asks for over {_MAX_WEIGHTS} weights"
            )
        stored = self.network_weights_
        if not isinstance(stored, dict) or set(stored) != set(want):
            raise state_error(self, "the stored weights do not name the network's")
        for key, shape in want.items():
            a = stored[key]
            if not (
                isinstance(a, np.ndarray)
                and a.dtype == np.float32
                and a.shape == shape
                and np.isfinite(a).all()
            ):
                raise state_error(
                    self, f"weight {key!r} is not a finite float32 {shape}"
                )
        if len(self.transformers_) != len(names) or len(self.feature_scaling_) != len(
            names
        ):
            raise state_error(self, "transformers_ / feature_scaling_ per modality")
        for (kind, width), scale in zip(inputs, self.feature_scaling_):
            if kind == "sparse":
                if scale is not None:
                    raise state_error(self, "a sparse modality with a scaling")
                continue
            ok = (
                isinstance(scale, (list, tuple))
                and len(scale) == 2
                and all(
                    isinstance(a, np.ndarray)
                    and a.shape == (width,)
                    and np.isfinite(a).all()
                    for a in scale
                )
                and (scale[1] > 0).all()
            )
            if not ok:
                raise state_error(
                    self, f"the feature scaling of a {width}-wide modality"
                )

    def _xfail_checks(self):
        """scikit-learn checks that cannot pass, with the reason."""
        why = (
            "early stopping keeps a random validation split of the rows; repeating "
            "rows instead of weighting them changes the split and the batches"
        )
        return {
            "check_sample_weight_equivalence_on_dense_data": why,
            "check_sample_weight_equivalence_on_sparse_data": why,
        }

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        try:  # sparse input works when every modality's transformer takes it
            tags.input_tags.sparse = all(
                isinstance(t, str) or get_tags(t).input_tags.sparse
                for _, t, _ in self.modalities
            )
        except (TypeError, ValueError):
            tags.input_tags.sparse = False
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        return tags

    @classmethod
    def get_test_params(cls):
        """Fast parameter sets for the estimator checks (none without torch)."""
        from sklearn.preprocessing import StandardScaler

        try:
            import_torch("NeuralFusionClassifier")
        except ImportError:
            return []
        everything = slice(0, None)
        small = {
            "hidden_size": 16,
            "max_epochs": 60,
            "batch_size": 32,
            "learning_rate": 1e-2,
            "random_state": 0,
            "device": "cpu",
            "all_missing": "prior",
        }
        return [
            {"modalities": [("a", "passthrough", everything)], **small},
            {
                "modalities": [
                    ("a", "passthrough", everything),
                    ("b", StandardScaler(), everything),
                ],
                "fusion": "gated",
                **small,
            },
        ]
