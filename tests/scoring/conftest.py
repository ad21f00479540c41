import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from mmfeat.features.image import HOGExtractor
from mmfeat.features.text import TfidfExtractor
from mmfeat.fusion import LateFusionClassifier, ModalityStackingClassifier, make_fuser
from tests.scoring._records import absolute, make_records


@pytest.fixture(scope="session")
def records_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("records")
    records = make_records(folder, n=60)
    records.to_csv(folder / "records.csv", index=False)
    return folder, records


def _image_model():
    return make_pipeline(
        HOGExtractor(
            image_size=(32, 32),
            pixels_per_cell=(8, 8),
            cells_per_block=(2, 2),
            on_error="missing",
        ),
        StandardScaler(),
        LogisticRegression(max_iter=500),
    )


def _text_model():
    return make_pipeline(
        TfidfExtractor(on_error="missing"), LogisticRegression(max_iter=500)
    )


def build(kind):
    """An unfitted model of the given fusion kind over image + title."""
    if kind == "late":
        return LateFusionClassifier(
            [("image", _image_model(), "image"), ("title", _text_model(), "title")],
            cv=3,
        )
    if kind == "stacking":
        return ModalityStackingClassifier(
            [("image", _image_model(), "image"), ("title", _text_model(), "title")],
            cv=3,
        )
    fuser = make_fuser(
        {
            "image": HOGExtractor(
                image_size=(32, 32),
                pixels_per_cell=(8, 8),
                cells_per_block=(2, 2),
                on_error="missing",
            ),
            "title": TfidfExtractor(on_error="missing"),
        }
    )
    return make_pipeline(fuser, LogisticRegression(max_iter=500))


@pytest.fixture(scope="session")
def fitted(records_dir):
    folder, records = records_dir
    X = absolute(records, folder)[["image", "title"]]
    y = records["label"].to_numpy()
    return {kind: build(kind).fit(X, y) for kind in ("late", "stacking", "early")}
