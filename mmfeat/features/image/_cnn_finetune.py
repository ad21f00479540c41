"""Supervised fine-tuning of a CNN backbone, and its data augmentation.

``CNNExtractor.fit`` with ``fine_tune_epochs > 0`` decodes the training
images once, then :func:`fine_tune` trains the backbone with a linear head
on the labels: cross-entropy, AdamW [1]_ with a cosine learning-rate schedule
[2]_, random horizontal flips and shifts (:func:`augment`). Random numbers
come from a seeded CPU ``torch.Generator``; torch's global random state is
left as it was.

torch is imported inside the functions (it is an optional extra).

References
----------
.. [1] I. Loshchilov and F. Hutter, "Decoupled Weight Decay Regularization",
   ICLR 2019.
.. [2] I. Loshchilov and F. Hutter, "SGDR: Stochastic Gradient Descent with
   Warm Restarts", ICLR 2017.
"""

from tqdm import tqdm

from mmfeat.features.image._cnn_deps import import_torch

__all__ = ["augment", "fine_tune"]


def augment(x, gen):
    """Random horizontal flips and shifts (up to 1/8 of the side) of a batch.

    One ``grid_sample`` with nearest sampling: whole-pixel shifts, edges
    repeated, so nothing is blurred. Random numbers come from ``gen`` (CPU).
    """
    torch = import_torch()
    n, _, h, w = x.shape
    flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
    shift_px = torch.stack(
        [
            torch.randint(-(w // 8), w // 8 + 1, (n,), generator=gen),
            torch.randint(-(h // 8), h // 8 + 1, (n,), generator=gen),
        ],
        dim=1,
    ).float()
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = flip
    theta[:, 1, 1] = 1.0
    theta[:, 0, 2] = shift_px[:, 0] * 2 / w
    theta[:, 1, 2] = shift_px[:, 1] * 2 / h
    theta = theta.to(device=x.device, dtype=x.dtype)
    grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    return torch.nn.functional.grid_sample(
        x, grid, mode="nearest", padding_mode="border", align_corners=False
    )


def fine_tune(
    module,
    images,
    target,
    *,
    forward,
    n_features,
    n_classes,
    epochs,
    learning_rate,
    batch_size,
    normalise,
    device,
    autocast_dtype,
    seed,
    verbose=0,
):
    """Train ``module`` in place on labelled images; return the loss curve.

    Parameters
    ----------
    module : torch.nn.Module
        The backbone, already on ``device``; left in eval mode.
    images : torch.Tensor of shape (n, H, W, 3), uint8, on the CPU
        The readable, labelled training images.
    target : torch.Tensor of shape (n,), int64
        Class index of each image.
    forward : callable
        ``forward(x) -> (n, n_features)``: the embedding of a normalised
        batch through ``module`` (the layer and pooling of the extractor).
    n_features : int
        Width of the embedding, the head's input.
    n_classes : int
        Classes of the linear head.
    epochs : int
        Passes over the images.
    learning_rate : float
        Peak AdamW learning rate, decayed to 0 along a cosine.
    batch_size : int
        Images per step (at most ``n``); a last batch of one image is
        dropped, as batch normalisation cannot train on it.
    normalise : callable
        ``normalise(x, "nhwc")``: uint8 pixels to the network's input.
    device : torch.device
        Where the training runs.
    autocast_dtype : torch.dtype or None
        Autocast precision of the forward pass (None: fp32); fp16 gets loss
        scaling on CUDA.
    seed : int
        Seeds the head's initialisation, the shuffling and the augmentation.
    verbose : int, default=0
        A progress bar of the steps when > 0.

    Returns
    -------
    loss_curve : list of float
        Mean training loss of each epoch.
    """
    from mmfeat.features.image._cnn_nets import autocast

    torch = import_torch()
    F = torch.nn.functional
    n = len(images)
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 1)
        head = torch.nn.Linear(n_features, n_classes)
    module.train()
    head.to(device)
    params = list(module.parameters()) + list(head.parameters())
    optimiser = torch.optim.AdamW(params, lr=learning_rate, weight_decay=1e-4)
    bs = min(batch_size, n)
    per_epoch = n // bs + (n % bs > 1)  # no step on 1 image (BN)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimiser, T_max=max(1, epochs * per_epoch)
    )
    # fp16 gradients underflow without loss scaling (bf16 and fp32 do not)
    scaler = torch.amp.GradScaler(
        device.type,
        enabled=autocast_dtype == torch.float16 and device.type == "cuda",
    )
    cuda = device.type == "cuda"
    if cuda:
        images = images.pin_memory()
    loss_curve = []
    bar = tqdm(
        total=epochs * per_epoch,
        desc="CNNExtractor fine-tuning",
        disable=not verbose,
        unit="step",
    )
    try:
        for _ in range(epochs):
            order = torch.randperm(n, generator=gen)
            total, seen = 0.0, 0
            for step in range(per_epoch):
                idx = order[step * bs : (step + 1) * bs]
                x = images[idx].to(device, non_blocking=cuda)
                yb = target[idx].to(device, non_blocking=cuda)
                x = augment(normalise(x, "nhwc"), gen)
                with autocast(device, autocast_dtype):
                    loss = F.cross_entropy(head(forward(x).float()), yb)
                optimiser.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimiser)
                scaler.update()
                schedule.step()
                total += float(loss.detach()) * len(idx)
                seen += len(idx)
                bar.update(1)
            loss_curve.append(total / max(seen, 1))
    finally:
        bar.close()
        module.eval()
    return loss_curve
