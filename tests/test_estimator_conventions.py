"""The scikit-learn estimators against scikit-learn's conventions, beyond what the generic checks of the default
configurations cover: tags that follow every loss."""

import numpy as np
import pytest
from sklearn.datasets import make_blobs

from mlpcli.estimators import MLPClassifier

TINY = dict(hidden=(4,), epochs=3, lr=1e-2)


@pytest.mark.parametrize("loss", ["bce", "focal", "hinge"])
def test_a_binary_only_loss_is_tagged_so_and_refuses_multiclass_in_scikit_learns_words(loss):
    """loss="bce" refuses a multiclass target, but its tags claimed multi_class=True, so scikit-learn's checks (and
    meta-estimators reading the tags) fed it multiclass targets: 18 of check_estimator's checks failed."""
    from sklearn.utils.estimator_checks import check_classifier_not_supporting_multiclass

    clf = MLPClassifier(**TINY, loss=loss)
    tags = clf.__sklearn_tags__().classifier_tags
    assert (tags.multi_class, tags.multi_label) == (False, True)
    check_classifier_not_supporting_multiclass("MLPClassifier", clf)
    X, y = make_blobs(40, n_features=3, centers=2, random_state=0)
    assert MLPClassifier(**TINY, loss=loss).fit(X, y).predict_proba(X).shape == (40, 2)
