"""``causal-grad train``: train a registered model from a named preset and keep the run."""

from __future__ import annotations

import argparse
import json
import sys

from .._validate import (
    check_concentration,
    check_int,
    check_output_path,
    check_positive_float,
    check_probability,
    check_scale,
)
from ..graphs import Graph
from ..runlock import LOCK_NAME, lock_holder
from ._common import add_graph_args, explicit_parents, graph_from_args

# The training modules (JAX, the model registry, the presets) are imported inside the functions that need them:
# the accepted exception that keeps `causal-grad` parsing and flag errors fast (see causal_grad.cli).

__all__ = ["add_parser", "run", "config_from_args", "summary"]

#: CLI flag destinations that override a config field of the same name.
_FIELDS = (
    "vocab",
    "alpha",
    "objective",
    "initial",
    "heads",
    "schedule",
    "optimizer",
    "lr",
    "lr2",
    "steps",
    "stage1_steps",
    "batch",
    "seed",
    "beta0",
    "gamma",
    "eps",
    "init",
    "init_scale",
    "weight_decay",
    "warmup",
    "d_model",
    "layers",
    "mlp_ratio",
    "mlp",
    "decay",
    "b1",
    "b2",
    "eval_every",
    "eval_size",
    "eval_seed",
    "checkpoint_every",
    "log_every",
    "snapshot_every",
)
#: Real-valued flags: training runs in float32, so each must lie within its range (finite there).
_FLOAT32_MAX = 3.4028234663852886e38
#: The optional metric writers of ``--log`` (causal_grad.logs.LOG_KINDS; metrics.csv is always written).
_LOG_KINDS = ("tensorboard", "wandb")


def _logs(text: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    bad = [k for k in kinds if k not in _LOG_KINDS]
    if bad or not kinds:  # (ArgumentTypeError: argparse keeps the message)
        raise argparse.ArgumentTypeError(
            f"--log must name writers among {', '.join(_LOG_KINDS)} (comma-separated; "
            f"metrics.csv is always written), got {text!r}"
        )
    return kinds


#: The built-in presets and models, named here so that the parser (which must not import JAX) can offer them as
#: choices; tests/test_cli.py checks they equal ``training.presets.PRESETS`` and the model registry.
PRESET_NAMES = ("reduced", "reduced-joint", "disentangled", "disentangled-joint", "standard", "fig2", "two-parent")
MODEL_NAMES = ("reduced", "disentangled", "standard", "catformer")
#: The training objectives and the n-gram task's initial laws (training.config.OBJECTIVES, ngram.NGRAM_INITIAL),
#: the learning-rate decays (training.schedules.DECAYS) and AdamW's default betas (training.schedules.ADAM_BETAS),
#: named here for the same reason; tests/test_cli.py checks they are the real ones.
OBJECTIVE_NAMES = ("query", "next_token")
INITIAL_NAMES = ("uniform", "stationary")
DECAY_NAMES = ("cosine", "constant")
DEFAULT_BETAS = (0.9, 0.999)


def _heads(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(h) for h in text.split(","))
    except ValueError:
        raise ValueError(f"heads: could not read {text!r} as comma-separated head counts, e.g. 2,1") from None


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a model on the in-context task and report how well it recovered the graph",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a model from a named preset (sampling on device, many steps per compiled call); every "
        "flag overrides the preset's field of the same name. Prints held-out loss against the "
        "in-context estimator and the entropy floor, parent attention, argmax recovery and SHD. With "
        "--out, keeps config.json, history.json, metrics.csv, attention.npz (first-layer attention "
        "snapshots, drawn by `causal-grad plot OUT`), weights.npz and (with --checkpoint-every) orbax "
        "checkpoints, and locks the folder while it runs (a second run into it is refused); --resume "
        "continues from the newest checkpoint that reads back completely to the same weights as an "
        "uninterrupted run, and --resume with a larger --steps extends a finished run.",
        epilog="presets: see the table below (--preset NAME; without it, --model M [--schedule S] picks M's fast "
        "preset)",
    )
    _presets_in_help(p)
    add_graph_args(p, n=None, vocab=None, alpha=None, graph=None)
    p.add_argument(
        "--T",
        type=int,
        default=None,
        help="sequence length T instead of --n (n = T-1 for forests, "
        "T+1 for the two-parent DAG, whose target is not a token, and for --objective next_token)",
    )
    t = p.add_argument_group("objective (the next-token loss of Edelman et al.'s ICL-MC)")
    t.add_argument(
        "--objective",
        choices=OBJECTIVE_NAMES,
        default=None,
        help="training loss: query (at the query, the paper's) or next_token (at every position of an n-gram task, "
        "ICL-MC's; its graph is the bigram graph, --graph chain, the default with next_token) (default: query)",
    )
    t.add_argument(
        "--initial",
        choices=INITIAL_NAMES,
        default=None,
        help="with --objective next_token: the law of the first token, uniform or stationary (the chain's own "
        "stationary law, ICL-MC's; then exact Bayes has no closed form and is not recorded) (default: uniform)",
    )
    m = p.add_argument_group("preset and model (unset flags keep the preset's values, listed below)")
    m.add_argument(
        "--preset",
        default=None,
        choices=PRESET_NAMES,
        help="named configuration (default: the fast preset of --model; the presets are listed below)",
    )
    m.add_argument(
        "--model",
        default=None,
        choices=MODEL_NAMES,
        help="model, when no --preset is given (default: reduced)",
    )
    m.add_argument(
        "--heads", type=_heads, default=None, help="heads per layer (disentangled: e.g. 2,1; standard: one number)"
    )
    m.add_argument("--init", default=None, help="disentangled initialisation: induction, zeros or normal")
    m.add_argument("--init-scale", type=float, default=None, help="disentangled init normal: N(0, s^2)")
    m.add_argument(
        "--beta0",
        type=float,
        default=None,
        help="A2 = beta0*I held in stage 1 (reduced); the induction start's match scale (disentangled)",
    )
    m.add_argument("--gamma", type=float, default=None, help="disentangled induction start: readout scale")
    m.add_argument("--eps", type=float, default=None, help="reduced model: readout smoothing")
    m.add_argument("--d-model", type=int, default=None, help="standard transformer width")
    m.add_argument("--layers", type=int, default=None, help="standard transformer layers")
    m.add_argument("--mlp-ratio", type=int, default=None, help="standard transformer MLP width / d_model")
    m.add_argument(
        "--no-mlp",
        dest="mlp",
        action="store_false",
        default=None,
        help="standard transformer: attention only, no MLP block in any layer (ICL-MC's model) (default: the MLP is "
        "kept)",
    )
    o = p.add_argument_group("optimiser and schedule")
    o.add_argument(
        "--schedule",
        choices=("layerwise", "joint"),
        default=None,
        help="without --preset: picks the model's preset for that schedule",
    )
    o.add_argument("--optimizer", choices=("sgd", "adamw"), default=None)
    o.add_argument("--lr", type=float, default=None, help="peak learning rate (stage 1 for layerwise)")
    o.add_argument("--lr2", type=float, default=None, help="stage-2 learning rate (layerwise; default: lr)")
    o.add_argument("--stage1-steps", type=int, default=None, help="layerwise: steps of stage 1 (default: half)")
    o.add_argument("--weight-decay", type=float, default=None, help="adamw weight decay")
    o.add_argument("--warmup", type=int, default=None, help="linear warm-up steps")
    o.add_argument(
        "--decay",
        choices=DECAY_NAMES,
        default=None,
        help="learning rate after the warm-up: cosine to 0, or constant at --lr (default: the preset's, cosine)",
    )
    o.add_argument(
        "--b1",
        type=float,
        default=None,
        help=f"adamw first-moment decay rate, 0 <= b1 < 1 (default: {DEFAULT_BETAS[0]}, optax's; ICL-MC: 0.9)",
    )
    o.add_argument(
        "--b2",
        type=float,
        default=None,
        help=f"adamw second-moment decay rate, 0 <= b2 < 1 (default: {DEFAULT_BETAS[1]}, optax's; ICL-MC: 0.95)",
    )
    r = p.add_argument_group("run")
    r.add_argument("--steps", type=int, default=None)
    r.add_argument("--batch", type=int, default=None)
    r.add_argument("--eval-every", type=int, default=None, help="held-out evaluation interval")
    r.add_argument("--eval-size", type=int, default=None, help="held-out sequences")
    r.add_argument("--eval-seed", type=int, default=None, help="key of the held-out set")
    r.add_argument("--log-every", type=int, default=None, help="training-loss logging interval")
    r.add_argument(
        "--checkpoint-every", type=int, default=None, help="orbax checkpoint interval (0: none; needs --out)"
    )
    r.add_argument(
        "--snapshot-every",
        type=int,
        default=None,
        help="record the first-layer attention into OUT/attention.npz every N steps, the frames of "
        "`causal-grad plot`'s animation (0: never; default: min(eval-every, steps/20), about 20 "
        "frames)",
    )
    r.add_argument(
        "--log",
        type=_logs,
        default=(),
        metavar="WRITERS",
        help="metric writers besides OUT/metrics.csv: tensorboard (event files in OUT/tensorboard), wandb "
        "(WANDB_MODE=offline keeps it local), or both comma-separated; needs --out",
    )
    r.add_argument("--out", default=None, help="results folder to keep the run in (default: nothing is written)")
    r.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its last checkpoint (with a larger --steps: extend it)",
    )
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run, seed=None)


def _presets_in_help(p: argparse.ArgumentParser) -> None:
    """``--help`` ends with the table of every preset's values, built only when help is asked for (building it
    imports the model registry, hence JAX)."""
    plain = p.format_help

    def format_help() -> str:
        from ..training.presets import preset_table  # lazy: CLI parsing stays JAX-free

        return plain() + "\n" + preset_table() + "\n"

    p.format_help = format_help  # type: ignore[method-assign]


def check_flags(args: argparse.Namespace) -> None:
    """The flags' own rules (those the configs apply too), before JAX is imported: a bad flag answers at once."""

    if args.T is not None:
        check_int("--T", args.T, minimum=2)  # the forest families need T >= 3: config_from_args, knowing the family
    if args.n is not None:
        check_int("--n", args.n, minimum=2)  # training needs two token positions (TrainConfig's rule)
    for flag, minimum in (
        ("steps", 1),
        ("batch", 1),
        ("stage1_steps", 1),
        ("eval_every", 1),
        ("eval_size", 1),
        ("log_every", 1),
        ("checkpoint_every", 0),
        ("warmup", 0),
        ("d_model", 1),
        ("layers", 1),
        ("mlp_ratio", 1),
        ("snapshot_every", 0),
    ):
        if getattr(args, flag) is not None:
            check_int("--" + flag.replace("_", "-"), getattr(args, flag), minimum=minimum)
    for flag, zero in (
        ("lr", False),
        ("lr2", False),
        ("gamma", True),
        ("init_scale", True),
        ("weight_decay", True),
        ("beta0", True),
    ):
        v = getattr(args, flag)
        if v is not None:
            name = "--" + flag.replace("_", "-")
            check_positive_float(name, v, allow_zero=zero)
            if abs(v) > _FLOAT32_MAX:
                raise ValueError(
                    f"{name} {v:.4g} is outside the float32 range (|x| <= {_FLOAT32_MAX:.4g}): training "
                    f"runs in float32, where it would be inf"
                )
    if args.beta0 is not None:
        check_scale("--beta0", args.beta0, "float32", allow_zero=True)  # training runs in float32
    for flag in ("b1", "b2"):
        if getattr(args, flag) is not None:
            check_probability("--" + flag, getattr(args, flag), open_high=True)
    if args.initial not in (None, "uniform") and args.objective != "next_token":
        raise ValueError(
            f"--initial {args.initial} is the law of the n-gram task's first token: it needs --objective next_token "
            f"(the query objective's task has its own root law)"
        )
    if args.vocab is not None:
        check_int("--vocab", args.vocab, minimum=2, maximum=2**31 - 1)  # tokens are int32
    if args.alpha is not None:
        check_concentration("--alpha", args.alpha, "float32")
    if args.resume and not args.out:
        raise ValueError("--resume needs --out (the folder of the run to continue)")
    if args.checkpoint_every and not args.out:
        raise ValueError("--checkpoint-every needs --out (where to keep the checkpoints)")
    if args.log and not args.out:
        raise ValueError("--log needs --out (the writers keep their files in the results folder)")
    if args.out:
        out = check_output_path("--out", args.out, kind="dir")
        if args.resume and not out.is_dir():
            raise ValueError(f"--resume: nothing to resume in {out}: the folder does not exist")
        pid = lock_holder(out)
        if pid is not None:
            who = "a process that is starting" if pid < 0 else f"process {pid}"
            raise ValueError(
                f"--out {out} is being written by another run ({who}, lock file {out / LOCK_NAME}): "
                f"wait for it to end or choose another folder"
            )
        if args.resume and not (out / "config.json").is_file():
            raise ValueError(f"--resume: nothing to resume in {out}: it holds no config.json (no run was kept there)")


def config_from_args(args: argparse.Namespace):
    """The :class:`~causal_grad.training.TrainConfig` of parsed ``train`` arguments: the preset, its graph
    replaced by ``--graph``/``--n``/``--T`` when given, then every flag that was set."""
    from ..models.registry import model_names  # lazy: CLI parsing stays JAX-free
    from ..training.presets import PRESETS, preset, preset_for  # lazy: CLI parsing stays JAX-free

    if args.preset is not None and args.preset not in PRESETS:
        raise ValueError(f"--preset must be one of {', '.join(PRESETS)}, got {args.preset!r}")
    if args.model is not None and args.model not in model_names():
        raise ValueError(f"--model must be one of {', '.join(model_names())}, got {args.model!r}")
    name = args.preset or preset_for(args.model or "reduced", args.schedule)
    p = PRESETS[name]
    if args.model is not None and args.model != p.model.name:
        raise ValueError(f"model: --model {args.model} differs from preset {name!r}'s model {p.model.name}")
    if args.mlp is False and p.model.name != "standard":
        raise ValueError(
            f"--no-mlp applies to the standard transformer only (--model standard), got model {p.model.name!r}"
        )
    next_token = args.objective == "next_token"
    family = args.graph if args.graph is not None else ("chain" if next_token else p.graph[0])
    args.graph = family
    if next_token and explicit_parents(family) is None and family != "chain":
        raise ValueError(
            f"--objective next_token trains on the n-gram graph, which for bigrams is the chain: use --graph chain "
            f"(or leave --graph out), got --graph {family}"
        )
    if args.T is not None and next_token:
        args.n = args.T + 1  # the n-gram graph's last position is the query-form target: T = n - 1 tokens
    elif args.T is not None:
        multi = family.replace("_", "-") in ("two-parent", "dag")
        if not multi and args.T < 3:
            raise ValueError(
                f"--T must be >= 3 for the forest family {family!r} (T = n + 1: training needs at least 2 "
                f"graph positions), got {args.T}"
            )
        args.n = Graph.n_for_seq_len(args.T, multi_parent=multi)
    if args.n is None and explicit_parents(family) is None:
        args.n = p.graph[1]
    seed = 0 if args.seed is None else args.seed
    graph_args = argparse.Namespace(
        **{
            **vars(args),
            "seed": seed,
            "vocab": p.vocab if args.vocab is None else args.vocab,
            "alpha": p.alpha if args.alpha is None else args.alpha,
        }
    )
    graph = graph_from_args(graph_args)
    given = {k: getattr(args, k) for k in _FIELDS if getattr(args, k, None) is not None}
    if p.model.name == "standard" and "heads" in given:
        if len(given["heads"]) != 1:
            raise ValueError(f"heads: the standard transformer takes one head count per layer, got {given['heads']}")
        given["heads"] = given["heads"][0]
    return preset(name, graph, **given)


def run(args: argparse.Namespace) -> int:
    check_flags(args)
    from ..training.run import train  # lazy: CLI parsing stays JAX-free

    cfg = config_from_args(args)
    res = train(
        cfg,
        args.out,
        resume=args.resume,
        progress=False if args.no_progress else None,
        log=args.log,
        echo=lambda msg: print(f"causal-grad train: {msg}", file=sys.stderr, flush=True),
    )
    for line in summary(res):
        print(line)
    return 0


def summary(res) -> list[str]:
    """The lines ``causal-grad train`` prints at the end of a run (:class:`~causal_grad.training.TrainResult`):
    the losses against their references, the first layer's graph recovery with SHD's threshold, the reduced
    model's ε/S smoothing penalty when it explains a loss far above the in-context estimator
    (docs/theory.md §7.5), and where the run is kept with the command that draws it."""

    cfg, f, b, h = res.config, res.final, res.baselines, res.history
    assert f is not None  # a finished run has evaluated at least at step 0
    graph, o = cfg.graph, cfg.optim
    next_token = cfg.task.objective == "next_token"
    betas = f" (b1 {o.b1:g}, b2 {o.b2:g})" if o.optimizer == "adamw" and (o.b1, o.b2) != DEFAULT_BETAS else ""
    task = f", next-token loss, {cfg.task.initial} start" if next_token else ""
    lines = [
        f"{cfg.model.name} / {o.schedule} / {o.optimizer} lr={o.lr}{betas}{task}: {h.steps_done} steps of "
        f"{cfg.run.batch} in {h.wall_s:.1f} s",
        f"held-out {'next-token loss (mean over every position)' if next_token else 'loss'} {f.loss:.4f} nats "
        f"(in-context estimator {b.in_context:.4f}, unigram {b.others.get('unigram', float('nan')):.4f}, entropy "
        f"floor {b.entropy_floor:.4f}; excess over the estimator {f.excess_over_in_context:+.4f})",
    ]
    if next_token and f.strategy_kl:
        lines.append(
            "KL from each strategy to the model (mean over every position): "
            + ", ".join(f"{k} {v:.4f}" for k, v in f.strategy_kl.items())
        )
    if f.recovered is not None:
        lines.append(
            f"first layer: parent attention mean {f.mean_parent_attention:.3f} (min "
            f"{f.min_parent_attention:.3f}), argmax recovers {f.recovered:.0%} of parents, SHD "
            f"{f.shd:g} (structural Hamming distance of the argmax graph to the true one: a row's argmax "
            f"is its parent when its weight is at least 0.5, else the row counts as a root)"
        )
        if f.previous_token is not None and graph.parents == tuple(range(-1, graph.n - 1)):
            extra = (
                ""
                if f.diag_minus_offdiag is None
                else (
                    f", layer-2 token block diag - offdiag {f.diag_minus_offdiag:.3f}, rows with diagonal argmax "
                    f"{f.diag_argmax_rows:.0%}"
                )
            )
            lines.append(f"induction head: previous-token weight {f.previous_token:.3f}{extra}")
    if f.heads is not None:
        ones = ", ".join(f"{k} {v:.4f}" for k, v in b.others.items() if k.startswith("one_parent"))
        if ones:
            lines.append(f"one-parent estimators: {ones}")
        lines.append(
            "first-layer heads (rows: heads, columns: parent slots), argmax fractions: "
            + json.dumps(f.heads.argmax)
            + " split: "
            + str(f.heads.split)
        )
    sm = h.smoothing
    excess = f.excess_over_in_context
    if sm is not None and excess > 0.05 and sm["ideal_excess_over_in_context"] > 0.5 * excess:
        lines.append(
            f"why the excess: the reduced model's readout (1-eps)*out + eps/S gives a token absent from the "
            f"copied ones only eps/S = {sm['eps']:g}/{sm['S']}, costing -log(eps/S) = {sm['floor_nats']:.2f} "
            f"nats per unit of target mass; {sm['absent_mass']:.1%} of the held-out target mass falls on "
            f"such tokens, so even the exact graph scores about {sm['ideal_loss']:.4f} "
            f"({sm['ideal_excess_over_in_context']:+.4f} over the estimator, whose pseudo-counts smooth "
            f"instead): the smoothing, not the graph (docs/theory.md §7.5; a larger --eps lowers it)"
        )
    if res.out is not None:
        lines.append(
            f"kept in {res.out} (config.json, history.json, metrics.csv, weights.npz"
            + (", attention.npz" if (res.out / "attention.npz").is_file() else "")
            + ")"
        )
        lines.append(f"see: causal-grad plot {res.out}")
    return lines
