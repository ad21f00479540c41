"""TextureEnergy: filter magnitudes averaged at integration scales."""

import numpy as np
from scipy import ndimage
from sklearn.linear_model import LogisticRegression

import mmfeat
from mmfeat.datasets import load_texture_mosaics
from mmfeat.segmentation import (
    PixelFeatures,
    PixelSegmenter,
    TextureEnergy,
    pixel_features,
)


def test_energy_is_the_smoothed_magnitude_of_each_response(rng):
    image = rng.random((30, 41)).astype(np.float32)
    energy = TextureEnergy(sigmas=(1.0, 2.0), features=("log",), energy_sigmas=(3.0,))
    out = energy.fit_transform([image])[0]
    responses = pixel_features(
        image, sigmas=(1.0, 2.0), features=("log",), color="grey"
    )
    assert out.shape == (30, 41, 2) and out.dtype == np.float32
    for k in range(2):
        ref = ndimage.gaussian_filter(
            np.abs(responses[:, :, k]).astype(np.float64), 3.0, mode="nearest"
        )
        np.testing.assert_allclose(out[:, :, k], ref, rtol=1e-4, atol=1e-5)
    assert list(energy.get_feature_names_out()) == [
        "I_log_s1_e3",
        "I_log_s2_e3",
    ]


def test_energy_tells_textures_apart_better_than_the_bank_alone(tmp_path):
    mosaics = load_texture_mosaics(n_images=8, random_state=0).frame
    train, test = mosaics[mosaics.split == "train"], mosaics[mosaics.split == "test"]
    clf = LogisticRegression(max_iter=300)
    scores = {}
    for name, features in {
        "bank": PixelFeatures(sigmas=(1.0, 2.0, 4.0), color="grey"),
        "energy": TextureEnergy(),
    }.items():
        seg = PixelSegmenter(features, classifier=clf, n_samples_per_image=800)
        seg.set_params(random_state=0).fit(train["image"], train["mask"])
        scores[name] = seg.score(test["image"], test["mask"])
    assert scores["energy"] > scores["bank"] + 0.1, scores
    # a model with it rebuilds without trusting any type
    mmfeat.save(seg, tmp_path / "energy.skops")
    loaded = mmfeat.load(tmp_path / "energy.skops")
    image = test["image"].iloc[0]
    np.testing.assert_array_equal(loaded.predict([image])[0], seg.predict([image])[0])


def test_missing_items_stay_missing(rng):
    energy = TextureEnergy(sigmas=(1.0,), features=("gradient",)).fit([None])
    out = energy.transform([None, rng.random((8, 9))])
    assert out[0] is None and out[1].shape == (8, 9, 2)
