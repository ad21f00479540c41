"""``mmfeat info``: :func:`mmfeat.workflows.describe_model`, printed."""

from mmfeat.cli._common import add_max_model_bytes_arg, add_trusted_arg

__all__ = ["format_parser", "main"]


def format_parser(parser):
    """Add the arguments of ``mmfeat info`` to ``parser``."""
    parser.description = (
        "Print a saved model's modalities, classes, parameters and the "
        "versions it was saved with."
    )
    parser.add_argument("model", help="model file (.skops)")
    add_trusted_arg(parser, "when loading")
    add_max_model_bytes_arg(parser)


def _print_steps(steps, indent, out):
    for step in steps:
        if step["name"] is None:
            print(f"{indent}{step['estimator']}", file=out)
            continue
        print(f"{indent}{step['name']}: {step['estimator']}", file=out)
        for part in step["parts"]:
            print(f"{indent}  {part['name']}: {part['estimator']}", file=out)


def main(args, out, err):
    """Run ``mmfeat info``; return the exit status."""
    from mmfeat.workflows import describe_model

    info = describe_model(
        args.model, trusted=args.trusted, max_bytes=args.max_model_bytes
    )
    print(f"model: {info['file']} ({info['file_bytes']:,} bytes)", file=out)
    print(f"type: {info['type']}", file=out)
    if info["saved_at"] or info["versions"]:
        saved = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
        print(f"saved: {info['saved_at'] or '?'} with {saved}", file=out)
    classes = info["classes"]
    if classes is not None:
        shown = ", ".join(map(str, classes[:30]))
        more = f" ... ({len(classes)} in all)" if len(classes) > 30 else ""
        print(f"classes ({len(classes)}): {shown}{more}", file=out)
    search = info.get("search")
    if search is not None:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in search["candidates"].items())
        print(f"chosen by cross-validation: {search['chosen']} ({shown})", file=out)
    if info["kind"] in ("ensemble", "deep"):
        if info.get("network"):
            print(f"network: {info['network']}", file=out)
        print("modalities:", file=out)
        for m in info["modalities"]:
            extra = []
            if m["training_rows"] is not None:
                extra.append(f"{m['training_rows']} training rows")
            if m["weight"] is not None:
                extra.append(f"weight {m['weight']:.3f}")
            shown = f" ({', '.join(extra)})" if extra else ""
            print(f"  {m['name']} <- {m['columns']!r}{shown}", file=out)
            _print_steps(m["steps"], "    ", out)
        if info["final_estimator"] is not None:
            print(f"final estimator: {info['final_estimator']}", file=out)
    else:
        if info["kind"] == "fused":
            print("modalities (fused blocks):", file=out)
            for m in info["modalities"]:
                print(f"  {m['name']} <- {m['columns']!r}", file=out)
                _print_steps(m["steps"], "    ", out)
        print("steps:", file=out)
        _print_steps(info["steps"], "  ", out)
    print(f"parameters: {info['parameters']}", file=out)
    return 0
