"""Common ground of the model-level fusion classifiers."""

import numbers

import numpy as np
import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import get_tags
from sklearn.utils.validation import _check_sample_weight, check_is_fitted

from mmfeat.exceptions import ParameterError
from mmfeat.fusion._modality import (
    TripleParams,
    all_missing_rows,
    calibrate_prefit,
    fit_modalities,
    n_rows,
    predict_modalities,
    raise_all_missing,
    select_columns,
    validate_modalities,
)
from mmfeat.utils._sklearn_compat import (
    Integral,
    StrOptions,
    _BaseComposition,
)
from mmfeat.utils._state import CheckedStateMixin, state_error
from mmfeat.utils._tables import check_table
from mmfeat.utils._validation import check_class_target

__all__ = ["BaseModalityEnsemble"]


class BaseModalityEnsemble(
    TripleParams, CheckedStateMixin, ClassifierMixin, _BaseComposition
):
    """Fit one classifier per modality; subclasses combine their probabilities."""

    _required_parameters = ["estimators"]

    _parameter_constraints = {
        # (name, estimator, columns) triples: validate_modalities says what
        # is wrong with an entry
        "estimators": [list, tuple],
        "cv": ["cv_object", StrOptions({"prefit"})],
        "all_missing": [StrOptions({"raise", "prior"})],
        "n_jobs": [Integral, None],
        "verbose": ["verbose"],
    }

    @property
    def named_estimators_(self):
        """The fitted modality models by name."""
        check_is_fitted(self, "estimators_")
        return dict(zip(self.modality_names_, self.estimators_))

    def _prefit(self):
        return isinstance(self.cv, str) and self.cv == "prefit"

    def _check_common(self):
        names = validate_modalities(self.estimators)
        if isinstance(self.cv, str) and not self._prefit():
            raise ParameterError(
                f"cv must be an int, a splitter or 'prefit'; got {self.cv!r}"
            )
        if not (
            self.cv is None
            or self._prefit()
            or (isinstance(self.cv, numbers.Integral) and not isinstance(self.cv, bool))
            or hasattr(self.cv, "split")
            or hasattr(self.cv, "__iter__")
        ):
            raise ParameterError(
                f"cv must be an int, a splitter, an iterable of splits or "
                f"'prefit'; got {self.cv!r}"
            )
        return names

    def _check_table(self, X, *, reset):
        """Check that ``X`` is a 2-D table; record or compare its width."""
        return check_table(self, X, reset=reset)

    def _check_y(self, y):
        return check_class_target(self, y)

    def _fit_base(self, X, y, sample_weight, oof_cv, groups=None):
        """Fit the modality models; return out-of-fold probabilities."""
        names = self._check_common()
        X = self._check_table(X, reset=True)
        y = self._check_y(y)
        if n_rows(X) != len(y):
            raise ValueError(
                f"Found input variables with inconsistent numbers of samples: "
                f"X has {n_rows(X)} rows, y has {len(y)}"
            )
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, np.zeros((len(y), 1)))
            if not (sample_weight > 0).any():
                raise ValueError(
                    "Sample weights must contain at least one non-zero number."
                )
        encoder = LabelEncoder().fit(y)
        weighted = y if sample_weight is None else y[sample_weight > 0]
        if len(np.unique(weighted)) < 2 or len(encoder.classes_) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in the "
                "data (with a positive sample weight), but the data contains "
                f"only one class: {np.unique(weighted)[0]!r}"
            )
        self.classes_ = encoder.classes_
        y_enc = encoder.transform(y)
        if groups is not None:
            groups = np.asarray(groups)
            if groups.shape != (len(y),):
                raise ValueError(
                    f"groups must have one entry per row ({len(y)}); got shape "
                    f"{groups.shape}"
                )
        self.modality_names_ = names
        counts = np.bincount(y_enc, weights=sample_weight, minlength=len(self.classes_))
        self.class_prior_ = counts / counts.sum()
        if self._prefit():
            self.estimators_ = []
            for name, est, cols in self.estimators:
                check_is_fitted(est)
                unknown = set(np.asarray(est.classes_).tolist()) - set(
                    self.classes_.tolist()
                )
                if unknown:
                    raise ParameterError(
                        f"prefit modality {name!r} knows classes {sorted(unknown)} "
                        "that are not in y"
                    )
                # no predict_proba: calibrate on this (held-out) data
                self.estimators_.append(
                    calibrate_prefit(est, select_columns(X, cols), y, name=name)
                )
            self.n_training_rows_ = None
            return self._predict_encoded(X), y_enc, sample_weight
        fitted, n_used, oof = fit_modalities(
            self.estimators,
            X,
            y,
            self.classes_,
            sample_weight=sample_weight,
            groups=groups,
            cv=oof_cv,
            calibration_cv=3,
            n_jobs=self.n_jobs,
            verbose=self.verbose,
        )
        self.estimators_ = fitted
        self.n_training_rows_ = dict(zip(names, n_used))
        return oof, y_enc, sample_weight

    def _check_fitted_state(self):
        names = self.modality_names_
        if len(self.estimators_) != len(names) or len(names) != len(self.estimators):
            raise state_error(
                self,
                f"{len(self.estimators_)} fitted models for {len(names)} modality "
                f"names and {len(self.estimators)} modalities",
            )
        classes = np.asarray(self.classes_)
        prior = np.asarray(self.class_prior_)
        if classes.ndim != 1 or len(classes) < 2 or prior.shape != classes.shape:
            raise state_error(
                self, f"classes_ {classes.shape} and class_prior_ {prior.shape}"
            )
        weights = getattr(self, "weights_", None)
        if weights is not None and (
            not isinstance(weights, dict)
            or set(weights) != set(names)
            or not all(np.isfinite(v) and v >= 0 for v in weights.values())
        ):
            raise state_error(self, f"weights_={weights!r} for modalities {names}")

    def _predict_encoded(self, X):
        """Per-modality probabilities with columns in ``classes_`` order."""
        X = self._check_table(X, reset=False)
        return predict_modalities(
            self.estimators_, self.estimators, X, self.classes_, n_jobs=self.n_jobs
        )

    def modality_proba(self, X):
        """Each modality's class probabilities on ``X``.

        Parameters
        ----------
        X : DataFrame
            The table, with every modality's columns.

        Returns
        -------
        probas : dict of str to ndarray of shape (n_samples, n_classes)
            By modality name; rows where the modality is missing are NaN.
        """
        check_is_fitted(self, "estimators_")
        probas = self._predict_encoded(X)
        return dict(zip(self.modality_names_, probas))

    def predict_proba_with_presence(self, X):
        """Fused probabilities and which modalities each row had.

        A row lacks a modality when every item of it is missing, or when
        its pipeline could not read them (the probabilities are then fused
        from the modalities the row has). Batch scoring uses this to find
        records with no usable modality; it is computed in the call, at any
        ``n_jobs``, not left on the model.

        Parameters
        ----------
        X : DataFrame
            The table, with every modality's columns.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            As :meth:`predict_proba` gives them.
        presence : DataFrame of bool, shape (n_samples, n_modalities)
            One column per modality (``modality_names_`` order): True where
            the row had it.
        """
        check_is_fitted(self, "estimators_")
        proba, probas = self._fused_proba(X)
        presence = pd.DataFrame(
            {n: ~np.isnan(p[:, 0]) for n, p in zip(self.modality_names_, probas)},
            columns=list(self.modality_names_),
        )
        return proba, presence

    def _handle_all_missing(self, probas, proba_out):
        empty = all_missing_rows(probas)
        if empty.any():
            if self.all_missing == "raise":
                raise_all_missing(np.flatnonzero(empty), self.modality_names_)
            proba_out[empty] = self.class_prior_
        return proba_out

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
        check_is_fitted(self, "estimators_")
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        try:  # sparse input works when every modality model takes it
            tags.input_tags.sparse = all(
                get_tags(est).input_tags.sparse for _, est, _ in self.estimators
            )
        except (TypeError, ValueError):
            tags.input_tags.sparse = False
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        return tags
