"""The network of :class:`NeuralFusionClassifier` and its training loop.

One encoder per modality (a first layer, layer normalisation, GELU, a second
layer, layer normalisation, GELU), a learnt *missing* embedding per modality
that replaces the encoder's output for a row without it, a fusion layer and
a classifier head:

- ``"concat"``: the modality embeddings side by side;
- ``"gated"``: their weighted sum, with per-row weights
  ``softmax_m(g_m · e_m + c_m)``, which :meth:`FusionNet.forward` also
  returns (``NeuralFusionClassifier.modality_weights`` shows them).

A sparse modality (TF-IDF) has an ``EmbeddingBag`` first layer: the product
of a CSR batch with the weights, without densifying the batch.

The network's parameter names and shapes follow from its *spec* alone
(``_neural.weight_shapes``, which needs no torch), so a model file's weights are
checked against them before torch sees them. torch is imported when this
module is, which :mod:`mmfeat.fusion._neural` does only inside its methods.
"""

import copy

import numpy as np

from mmfeat.utils._torch import import_torch

torch = import_torch("NeuralFusionClassifier")
nn = torch.nn
F = torch.nn.functional

__all__ = ["FusionNet", "build_network", "predict_batches", "train_network"]


class Encoder(nn.Module):
    """One modality's encoder: features to an embedding of ``hidden`` units."""

    def __init__(self, kind, width, hidden, dropout):
        super().__init__()
        self.sparse = kind == "sparse"
        if self.sparse:
            # rows of TF-IDF are unit vectors: N(0, 1) weights give unit
            # variance sums, as a dense layer's default does on standard input
            self.first = nn.EmbeddingBag(width, hidden, mode="sum")
        else:
            self.first = nn.Linear(width, hidden, bias=False)
        self.bias = nn.Parameter(torch.zeros(hidden))
        self.norm1 = nn.LayerNorm(hidden)
        self.second = nn.Linear(hidden, hidden)
        self.norm2 = nn.LayerNorm(hidden)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        if self.sparse:
            indices, offsets, values = x
            z = self.first(indices, offsets, per_sample_weights=values)
        else:
            z = self.first(x)
        z = self.drop(F.gelu(self.norm1(z + self.bias)))
        return F.gelu(self.norm2(self.second(z)))


class FusionNet(nn.Module):
    """Encoders, missing embeddings, the fusion layer and the head."""

    def __init__(self, spec):
        super().__init__()
        h = spec["hidden_size"]
        p = spec["dropout"]
        m = len(spec["inputs"])
        self.fusion = spec["fusion"]
        self.encoders = nn.ModuleList(
            Encoder(kind, width, h, p) for kind, width in spec["inputs"]
        )
        self.missing = nn.Parameter(torch.randn(m, h) * 0.02)
        if self.fusion == "gated":
            self.gate = nn.Parameter(torch.zeros(m, h))
            self.gate_bias = nn.Parameter(torch.zeros(m))
            width = h
        else:
            width = m * h
        if spec.get("wide"):
            c = spec["n_classes"]
            self.wide = nn.ModuleList(
                nn.EmbeddingBag(width, c, mode="sum")
                if kind == "sparse"
                else nn.Linear(width, c, bias=False)
                for kind, width in spec["inputs"]
            )
            for layer in self.wide:
                nn.init.zeros_(layer.weight)
            self.wide_missing = nn.Parameter(torch.zeros(m, c))
        else:
            self.wide = None
        self.head = nn.Sequential(
            nn.Dropout(p),
            nn.Linear(width, h),
            nn.GELU(),
            nn.Dropout(p),
            nn.Linear(h, spec["n_classes"]),
        )

    def forward(self, inputs, present):
        """Logits, and the per-row modality weights (None for ``"concat"``).

        ``inputs[m]`` holds modality ``m``'s features of the rows where
        ``present[:, m]`` (a bool tensor) is True, in row order, or None
        when no row has it.
        """
        n = present.shape[0]
        embeddings = []
        wide = 0.0
        for m, (encoder, x) in enumerate(zip(self.encoders, inputs)):
            e = self.missing[m].unsqueeze(0).expand(n, -1)
            if self.wide is not None:
                w = self.wide_missing[m].unsqueeze(0).expand(n, -1)
            if x is not None:
                rows = torch.nonzero(present[:, m]).squeeze(1)
                e = e.index_copy(0, rows, encoder(x))
                if self.wide is not None:
                    layer = self.wide[m]
                    out = (
                        layer(x[0], x[1], per_sample_weights=x[2])
                        if isinstance(x, tuple)
                        else layer(x)
                    )
                    w = w.index_copy(0, rows, out)
            if self.wide is not None:
                wide = wide + w
            embeddings.append(e)
        if self.fusion == "gated":
            stacked = torch.stack(embeddings, dim=1)  # (n, m, h)
            scores = (stacked * self.gate).sum(-1) + self.gate_bias
            weights = torch.softmax(scores, dim=1)
            fused = (weights.unsqueeze(-1) * stacked).sum(1)
        else:
            weights = None
            fused = torch.cat(embeddings, dim=1)
        return self.head(fused) + wide, weights


def build_network(spec, weights=None, *, seed=0):
    """A :class:`FusionNet` for ``spec``: seeded, or with ``weights`` (arrays)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = FusionNet(spec)
    if weights is not None:
        net.load_state_dict(
            {k: torch.from_numpy(np.asarray(a)) for k, a in weights.items()}
        )
    return net


def network_weights(net):
    """The network's parameters as float32 CPU arrays, by name."""
    return {
        k: v.detach().to("cpu", torch.float32).numpy().copy()
        for k, v in net.state_dict().items()
    }


def _batch_inputs(blocks, rows, present, device, train=False):
    """Each modality's torch input for ``rows`` where ``present`` says so.

    A trainable block (an image backbone trained with the network) gives
    its backbone's features of the batch's images, with gradients.
    """
    out = []
    for m, block in enumerate(blocks):
        keep = rows[present[:, m]]
        if not len(keep):
            out.append(None)
            continue
        if hasattr(block, "forward"):
            images = torch.from_numpy(block.images[block.index[keep]])
            out.append(block.forward(images, train).to(device).float())
            continue
        part = block[keep]
        if block.ndim == 2 and hasattr(part, "indptr"):  # CSR
            part.sort_indices()
            out.append(
                (
                    torch.from_numpy(part.indices.astype(np.int64)).to(device),
                    torch.from_numpy(part.indptr[:-1].astype(np.int64)).to(device),
                    torch.from_numpy(part.data.astype(np.float32)).to(device),
                )
            )
        else:
            out.append(torch.from_numpy(np.ascontiguousarray(part)).to(device))
    return out


def _drop_modalities(present, p, rng):
    """``present`` with each modality dropped with probability ``p``.

    A row keeps at least one of the modalities it has: when every one is
    dropped, one of them, chosen at random, comes back.
    """
    kept = present & (rng.random(present.shape) >= p)
    empty = np.flatnonzero(~kept.any(axis=1) & present.any(axis=1))
    for i in empty:
        have = np.flatnonzero(present[i])
        kept[i, have[rng.integers(len(have))]] = True
    return kept


def _loss(
    net, blocks, rows, present, target, row_weight, class_weight, device, train=False
):
    """Summed weighted cross-entropy of ``rows`` (``present``: their presence)."""
    logits, _ = net(
        _batch_inputs(blocks, rows, present, device, train),
        torch.from_numpy(present).to(device),
    )
    losses = F.cross_entropy(
        logits,
        torch.from_numpy(target[rows]).to(device),
        weight=class_weight,
        reduction="none",
    )
    w = torch.from_numpy(row_weight[rows]).to(device)
    return (losses * w).sum(), w.sum(), logits


def train_network(
    net,
    blocks,
    present,
    target,
    row_weight,
    class_weight,
    train_rows,
    val_rows,
    *,
    max_epochs,
    batch_size,
    learning_rate,
    weight_decay,
    modality_dropout,
    n_iter_no_change,
    tol,
    seed,
    device,
    verbose=0,
):
    """Train ``net`` in place (AdamW, early stopping on ``val_rows``).

    Returns ``(loss_curve, validation_loss_curve, validation_scores,
    best_epoch)``; the epoch kept is the one of the best validation accuracy
    (the lowest validation loss among equals); with
    validation rows, the network ends with the weights of its best epoch.
    ``row_weight`` is each row's loss weight (sample weights), ``class_weight``
    a tensor of per-class loss weights or None.
    """
    rng = np.random.default_rng(seed)
    net.to(device)
    # image backbones trained with the network (end to end): their
    # parameters in the same optimiser, their states kept with the best epoch
    backbones = [b.module for b in blocks if hasattr(b, "forward")]
    params = list(net.parameters()) + [p for b in backbones for p in b.parameters()]
    optimiser = torch.optim.AdamW(params, lr=learning_rate, weight_decay=weight_decay)
    cw = None if class_weight is None else class_weight.to(device)
    curve, val_curve, val_scores = [], [], []
    best, best_state, best_epoch, stale = (-np.inf, np.inf), None, 0, 0
    with torch.random.fork_rng(devices=[] if device.type == "cpu" else [device]):
        torch.manual_seed(seed)
        for epoch in range(max_epochs):
            net.train()
            order = rng.permutation(train_rows)
            total, weight = 0.0, 0.0
            for start in range(0, len(order), batch_size):
                rows = order[start : start + batch_size]
                mask = present[rows]
                if modality_dropout > 0 and mask.shape[1] > 1:
                    mask = _drop_modalities(mask, modality_dropout, rng)
                loss, w, _ = _loss(
                    net, blocks, rows, mask, target, row_weight, cw, device, train=True
                )
                if float(w) <= 0:
                    continue
                optimiser.zero_grad(set_to_none=True)
                (loss / w).backward()
                optimiser.step()
                total += float(loss.detach())
                weight += float(w)
            curve.append(total / max(weight, 1e-12))
            if len(val_rows):
                val, score = _evaluate(
                    net,
                    blocks,
                    present,
                    target,
                    row_weight,
                    cw,
                    val_rows,
                    batch_size,
                    device,
                )
                val_curve.append(val)
                val_scores.append(score)
                # as scikit-learn's MLP: the validation accuracy decides (the
                # loss keeps falling long after the ranking has settled, or
                # rises from overconfidence while the accuracy still grows);
                # the loss breaks ties
                if score > best[0] or (score == best[0] and val < best[1] - tol):
                    best, best_epoch, stale = (score, val), epoch, 0
                    best_state = [
                        copy.deepcopy(mod.state_dict()) for mod in (net, *backbones)
                    ]
                else:
                    stale += 1
            else:
                best_epoch = epoch
            if verbose:
                shown = (
                    f", validation loss {val_curve[-1]:.4f}, accuracy "
                    f"{val_scores[-1]:.4f}"
                    if val_curve
                    else ""
                )
                print(
                    f"[NeuralFusionClassifier] epoch {epoch + 1}: training loss "
                    f"{curve[-1]:.4f}{shown}",
                    flush=True,
                )
            if len(val_rows) and stale >= n_iter_no_change:
                break
    if best_state is not None:
        for mod, state in zip((net, *backbones), best_state):
            mod.load_state_dict(state)
    net.eval()
    for mod in backbones:
        mod.eval()
    return curve, val_curve, val_scores, best_epoch


def _evaluate(net, blocks, present, target, row_weight, cw, rows, batch_size, device):
    """Weighted loss and accuracy of ``rows``."""
    net.eval()
    total, weight, right = 0.0, 0.0, 0.0
    with torch.inference_mode():
        for start in range(0, len(rows), batch_size * 4):
            part = rows[start : start + batch_size * 4]
            loss, w, logits = _loss(
                net, blocks, part, present[part], target, row_weight, cw, device
            )
            hit = (logits.argmax(1).cpu().numpy() == target[part]).astype(np.float64)
            total += float(loss)
            weight += float(w)
            right += float((hit * row_weight[part]).sum())
    return total / max(weight, 1e-12), right / max(weight, 1e-12)


def _as_dtype(inputs, dtype):
    """The batch inputs with their floating values in ``dtype``."""
    out = []
    for x in inputs:
        if isinstance(x, tuple):  # CSR: (indices, offsets, values)
            x = (x[0], x[1], x[2].to(dtype))
        elif x is not None:
            x = x.to(dtype)
        out.append(x)
    return out


def predict_batches(net, blocks, present, batch_size, device):
    """Class probabilities and modality weights (or None) of every row.

    On the CPU the network runs in float64: float32 matrix products give a
    row results that depend (in the last bits) on which other rows share
    its batch, and a row's prediction must not depend on its neighbours.
    """
    n = present.shape[0]
    dtype = torch.float64 if torch.device(device).type == "cpu" else torch.float32
    net.to(device=device, dtype=dtype).eval()
    probas, weights = [], []
    rows = np.arange(n)
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            part = rows[start : start + batch_size]
            logits, w = net(
                _as_dtype(_batch_inputs(blocks, part, present[part], device), dtype),
                torch.from_numpy(present[part]).to(device),
            )
            probas.append(torch.softmax(logits.double(), dim=1).cpu().numpy())
            if w is not None:
                weights.append(w.float().cpu().numpy())
    proba = np.concatenate(probas).astype(np.float64) if probas else None
    return proba, (np.concatenate(weights).astype(np.float64) if weights else None)
