"""The segmentation section of ``mmfeat demo``, on embedded data only."""

import io
import re

from mmfeat.cli._demo import segmentation_demo

_ROW = re.compile(r"^  (\S.*?\S)\s+(\d\.\d{4})\s+(\d\.\d{4})$", re.M)


def test_segmentation_demo_prints_and_returns_its_scores():
    out = io.StringIO()
    said = []
    result = segmentation_demo(random_state=0, out=out, progress=said.append)
    text = out.getvalue()
    assert "texture mosaics" in text and "Middlebury motorcycle" in text
    assert "pixel accuracy" in text and "mean IoU" in text
    printed = {name: (float(a), float(b)) for name, a, b in _ROW.findall(text)}
    scores = {**result["textures"], **result["stereo"]}
    assert set(printed) == set(scores) and len(printed) == 4
    for name, s in scores.items():
        assert printed[name] == (
            round(s["pixel accuracy"], 4),
            round(s["mean IoU"], 4),
        )
        assert 0 <= s["mean IoU"] <= 1 and 0 <= s["pixel accuracy"] <= 1
    # three textures: chance is a third of the pixels
    (texture,) = result["textures"].values()
    assert texture["mean IoU"] > 0.8 and texture["pixel accuracy"] > 0.9
    stereo = result["stereo"]
    fused = stereo["image + depth fused (feature level)"]["mean IoU"]
    assert fused > stereo["image alone"]["mean IoU"]
    assert fused >= stereo["depth alone"]["mean IoU"] - 0.01
    assert any("texture mosaics" in line for line in said)
    assert result["seconds"] > 0
