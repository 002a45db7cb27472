"""``causal-grad train``: train the reduced, disentangled or standard model and keep the run."""

from __future__ import annotations

from ._common import add_graph_args, check_graph_args, graph_from_args


def _heads(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(h) for h in text.split(","))
    except ValueError:
        raise ValueError(f"heads: could not read {text!r} as comma-separated head counts, e.g. 2,1") from None


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train", help="train a model on the in-context task and report how well it recovered the graph",
        description="Train the reduced, disentangled or standard model (sampling on device, many steps per "
                    "compiled call). Prints held-out loss against the in-context estimator and the entropy "
                    "floor, parent attention, argmax recovery and SHD. With --out, keeps config.json, "
                    "history.json, weights.npz and (with --checkpoint-every) orbax checkpoints; --resume "
                    "continues from the last checkpoint to the same weights as an uninterrupted run. "
                    "Unset options take per-model defaults (see causal_grad.training.run.DEFAULTS).")
    add_graph_args(p, n=19, vocab=10, alpha=0.1)
    p.add_argument("--T", type=int, default=None, help="sequence length T instead of --n (n = T-1 for forests, "
                                                        "T+1 for the two-parent DAG, whose target is not a token)")
    m = p.add_argument_group("model and schedule")
    m.add_argument("--model", choices=("reduced", "disentangled", "standard"), default="reduced")
    m.add_argument("--heads", type=_heads, default=None, help="disentangled heads per layer (default: 1,1)")
    m.add_argument("--schedule", choices=("layerwise", "joint"), default=None,
                   help="default: layerwise (reduced), joint (disentangled, standard)")
    m.add_argument("--optimizer", choices=("sgd", "adamw"), default=None)
    m.add_argument("--lr", type=float, default=None, help="peak learning rate (stage 1 for layerwise)")
    m.add_argument("--lr2", type=float, default=None, help="stage-2 learning rate (layerwise)")
    m.add_argument("--steps", type=int, default=None)
    m.add_argument("--stage1-steps", type=int, default=None, help="layerwise: steps of stage 1 (default: half)")
    m.add_argument("--batch", type=int, default=1024)
    m.add_argument("--beta0", type=float, default=None, help="A2 = beta0*I held in stage 1")
    m.add_argument("--gamma", type=float, default=None, help="disentangled layerwise: readout scale")
    m.add_argument("--init-scale", type=float, default=None, help="disentangled joint: N(0, s^2) initialisation")
    m.add_argument("--weight-decay", type=float, default=None, help="adamw weight decay")
    m.add_argument("--warmup", type=int, default=None, help="linear warm-up steps")
    m.add_argument("--d-model", type=int, default=None, help="standard transformer width (default 64)")
    m.add_argument("--layers", type=int, default=None, help="standard transformer layers (default 2)")
    r = p.add_argument_group("run")
    r.add_argument("--out", default=None, help="results folder to keep the run in (default: nothing is written)")
    r.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    r.add_argument("--eval-every", type=int, default=None, help="held-out evaluation interval (default: 50)")
    r.add_argument("--checkpoint-every", type=int, default=None, help="orbax checkpoint interval (default: "
                                                                     "none; needs --out)")
    r.add_argument("--eval-size", type=int, default=None, help="held-out sequences (default: 8192)")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def check_flags(args) -> None:
    """The flags' own rules (those TrainConfig applies too), before JAX is imported: a bad flag answers at once."""
    from .._validate import check_int, check_output_path, check_positive_float, check_scale

    if args.T is not None:
        if args.T < 2:
            raise ValueError(f"--T must be >= 2, got {args.T}")
        two = args.graph.replace("_", "-") in ("two-parent", "dag")
        args.n = args.T + 1 if two else args.T - 1
    for flag, minimum in (("steps", 1), ("batch", 1), ("stage1_steps", 1), ("eval_every", 1), ("eval_size", 1),
                          ("checkpoint_every", 0), ("warmup", 0), ("d_model", 1), ("layers", 1)):
        if getattr(args, flag) is not None:
            check_int("--" + flag.replace("_", "-"), getattr(args, flag), minimum=minimum)
    for flag, zero in (("lr", False), ("lr2", False), ("gamma", True), ("init_scale", True), ("weight_decay", True)):
        if getattr(args, flag) is not None:
            check_positive_float("--" + flag.replace("_", "-"), getattr(args, flag), allow_zero=zero)
    if args.beta0 is not None:
        check_scale("--beta0", args.beta0, "float32", allow_zero=True)  # training runs in float32
    if args.resume and not args.out:
        raise ValueError("--resume needs --out (the folder of the run to continue)")
    if args.checkpoint_every and not args.out:
        raise ValueError("--checkpoint-every needs --out (where to keep the checkpoints)")
    if args.out:
        check_output_path("--out", args.out, kind="dir")
    check_graph_args(args)


def run(args) -> int:
    check_flags(args)

    # heavy imports inside run(): the accepted exception that keeps `causal-grad` startup fast
    import json

    from ..training.run import default_config, train

    graph = graph_from_args(args)
    cfg = default_config(
        args.model, graph, vocab=args.vocab, alpha=args.alpha, heads=args.heads, schedule=args.schedule,
        optimizer=args.optimizer, lr=args.lr, lr2=args.lr2, steps=args.steps, stage1_steps=args.stage1_steps,
        batch=args.batch, seed=args.seed, beta0=args.beta0, gamma=args.gamma, init_scale=args.init_scale,
        weight_decay=args.weight_decay, warmup=args.warmup, d_model=args.d_model, layers=args.layers,
        eval_every=args.eval_every, checkpoint_every=args.checkpoint_every, eval_size=args.eval_size)
    res = train(cfg, args.out, resume=args.resume, progress=not args.no_progress)
    f = res.final
    b = res.history["baselines"]
    print(f"{cfg.model} / {cfg.schedule} / {cfg.optimizer} lr={cfg.lr}: {res.history['steps_done']} steps of "
          f"{cfg.batch} in {res.history['wall_s']:.1f} s")
    print(f"held-out loss {f['loss']:.4f} nats (in-context estimator {b['bayes']:.4f}, entropy floor "
          f"{b['entropy_floor']:.4f}; excess {f['excess_over_bayes']:+.4f})")
    if "recovered" in f:
        print(f"first layer: parent attention mean {f['mean_parent_attention']:.3f} (min "
              f"{f['min_parent_attention']:.3f}), argmax recovers {f['recovered']:.0%} of parents, SHD {f['shd']}")
        if f.get("previous_token") is not None and graph.parents == tuple(range(-1, graph.n - 1)):
            extra = "" if "diag_minus_offdiag" not in f else (
                f", layer-2 token block diag - offdiag {f['diag_minus_offdiag']:.3f}, rows with diagonal argmax "
                f"{f['diag_argmax_rows']:.0%}")
            print(f"induction head: previous-token weight {f['previous_token']:.3f}{extra}")
    if "heads" in f:
        ones = ", ".join(f"{k} {v:.4f}" for k, v in b.items() if k.startswith("one_parent"))
        print(f"one-parent estimators: {ones}")
        print("first-layer heads (rows: heads, columns: parent slots), argmax fractions:",
              json.dumps(f["heads"]["argmax"]), "split:", f["heads"]["split"])
    if res.out is not None:
        print(f"kept in {res.out} (config.json, history.json, weights.npz)")
    return 0
