import mmfeat.datasets as datasets


def test_datasets_all_lists_public_api():
    expected = {
        "fetch_fsdd",
        "get_data_home",
        "load_av_digits",
        "load_digits_images",
        "load_fashion_products",
        "load_fsdd",
        "load_pascal_sentences",
        "load_stereo_depth",
        "load_texture_mosaics",
        "load_usps",
        "load_weizmann_horses",
    }
    assert set(datasets.__all__) == expected
    for name in datasets.__all__:
        assert callable(getattr(datasets, name))
