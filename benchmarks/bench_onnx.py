"""CNN features on a CPU: ``CNNExtractor(inference="onnx")`` vs torch eager.

Run: ``python benchmarks/bench_onnx.py [--repeat N] [--json FILE] [--large]``
(needs CPU torch and ``pip install -e ".[onnx]"``; resnet18 also needs a
torchvision that imports beside torch, else it is left out and says so).

Inputs: 64 images of 224x224 (``--large``: 256), random uint8 pixels as a
decoded stack, so both sides time the network, not JPEG decoding; and the
fashion sample's first 256 JPEG photos, end to end (decoding in one thread on
both sides). The ``"simple"`` backbone (and resnet18, random weights: the
speed does not depend on them) with its default layer and average pooling
(without torchvision, resnet18 is a copy of its architecture written in torch,
passed as a module). mmfeat scores the exported graph with onnxruntime (CPU),
in ``n_jobs`` intra-op threads; the peers are torch eager on the same network:
a bare loop (``inference_mode``, the normalisation and forward pass per batch
of 64, ``torch.set_num_threads``), and ``CNNExtractor`` itself with
``inference="torch"``. The features are checked equal (within 1e-4) before
timing. Ratio = peer time / mmfeat time.
"""

import numpy as np
import torch
from _common import median_time, parser, report

from mmfeat.datasets import load_fashion_products
from mmfeat.features.image import CNNExtractor


def bare_torch(cnn, stack, n_jobs):
    """Torch eager on the network: normalise + forward + pool, batch by batch."""
    cpu = torch.device("cpu")
    module = cnn.module_
    layer = cnn._layer_module(module)
    normalise = cnn._normaliser(cpu)
    from mmfeat.features.image import _cnn_nets as nets

    before = torch.get_num_threads()
    torch.set_num_threads(n_jobs)
    try:
        with torch.inference_mode():
            out = [
                nets.embed(
                    module,
                    normalise(torch.from_numpy(stack[i : i + cnn.batch_size]), "nhwc"),
                    layer,
                    cnn._take_input_,
                    cnn.pooling,
                ).numpy()
                for i in range(0, len(stack), cnn.batch_size)
            ]
    finally:
        torch.set_num_threads(before)
    return np.concatenate(out)


class Block(torch.nn.Module):
    """torchvision's ResNet BasicBlock."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        conv = torch.nn.Conv2d
        self.conv1 = conv(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(cout)
        self.conv2 = conv(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = torch.nn.Sequential(
                conv(cin, cout, 1, stride, bias=False), torch.nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + (x if self.down is None else self.down(x)))


class ResNet18(torch.nn.Module):
    """torchvision's resnet18 trunk (to the last feature map), in torch alone."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.stem = torch.nn.Sequential(
            torch.nn.Conv2d(3, 64, 7, 2, 3, bias=False),
            torch.nn.BatchNorm2d(64),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(3, 2, 1),
        )
        widths = [(64, 64, 1), (64, 128, 2), (128, 256, 2), (256, 512, 2)]
        self.layers = torch.nn.Sequential(
            *[torch.nn.Sequential(Block(a, b, s), Block(b, b, 1)) for a, b, s in widths]
        )

    def forward(self, x):
        return self.layers(self.stem(x))


def backbones():
    yield "simple", "simple"
    try:
        import torchvision  # noqa: F401
    except Exception as exc:  # absent, or built for another torch
        print(
            "torchvision does not import here "
            f"({exc!r:.80}): resnet18 is a torch-only copy of its architecture"
        )
        yield "resnet18 (torch copy)", ResNet18().eval()
    else:
        yield "resnet18", "resnet18"


def main():
    args = parser(__doc__).parse_args()
    n = 256 if args.large else 64
    stack = np.random.default_rng(0).integers(0, 256, (n, 224, 224, 3), np.uint8)
    photos = load_fashion_products().frame["path"].tolist()[:256]
    rows = []
    for label, backbone in backbones():
        for j in (1, 2):
            kw = dict(backbone=backbone, random_state=0, n_jobs=j, device="cpu")
            onnx_cnn = CNNExtractor(**kw, inference="onnx").fit()
            torch_cnn = onnx_cnn.__class__(**kw).fit()  # the same seeded network
            ours = onnx_cnn.transform(stack)
            np.testing.assert_allclose(ours, torch_cnn.transform(stack), atol=1e-4)
            np.testing.assert_allclose(
                ours, bare_torch(torch_cnn, stack, j), rtol=1e-4, atol=1e-4
            )
            case = f"{label} 224x224 stack, {j} thr"
            t_ours = median_time(
                lambda c=onnx_cnn: c.transform(stack), repeat=args.repeat
            )
            t_bare = median_time(
                lambda c=torch_cnn, j=j: bare_torch(c, stack, j), repeat=args.repeat
            )
            t_ext = median_time(
                lambda c=torch_cnn: c.transform(stack), repeat=args.repeat
            )
            rows.append((case, t_ours, t_bare, n, "torch eager loop"))
            rows.append((case, t_ours, t_ext, n, "CNNExtractor torch"))
            if label == "simple":
                case = f"simple, {len(photos)} fashion JPEGs, {j} thr"
                t_ours = median_time(
                    lambda c=onnx_cnn: c.transform(photos), repeat=args.repeat
                )
                t_ext = median_time(
                    lambda c=torch_cnn: c.transform(photos), repeat=args.repeat
                )
                rows.append((case, t_ours, t_ext, len(photos), "CNNExtractor torch"))
    report("CNN features on the CPU (images/s)", rows, args, unit="img/s")


if __name__ == "__main__":
    main()
