"""Command line: ``python -m cnnvit {train,study,data,models} ...``."""
from __future__ import annotations

import argparse
import errno
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path

from . import config as config_mod
from .errors import CnnvitError, DatasetError

EPILOG = """examples:
  python -m cnnvit data fetch all --to ~/.cache/cnnvit-data
  python -m cnnvit data check ~/.cache/cnnvit-data
  python -m cnnvit data --set data.name=cifar10 data.root=~/.cache/cnnvit-data/cifar10
  python -m cnnvit train --set model.name=resnet18_cifar train.epochs=1 --out outputs/runs/try1
  python -m cnnvit models --all '*vit_tiny*'
  python -m cnnvit train --set model.name=torchvision:mobilenet_v3_small data.image_size=64 --out RUN
  python -m cnnvit train params/paper/01_cifar10_vit_vs_resnet.yaml --run strong_resnet18 --out RUN
  python -m cnnvit study params/smoke/01_cifar10_vit_vs_resnet.yaml
  python -m cnnvit study params/paper/01_cifar10_vit_vs_resnet.yaml --dry-run --data-dir ~/.cache/cnnvit-data
  python -m cnnvit report --profile paper --studies 01 --data-dir ~/.cache/cnnvit-data

A PARAMS file is either a plain config (data:, model:, train:, optim:, sched:, seed, device) or a
study file (base: plus runs:; pick one with --run). --set overrides any key, e.g. optim.lr=0.01.
The resolved config is saved as RUN/config.yaml with non-default values marked."""


def _config(args) -> config_mod.Config:
    if args.params:
        raw = config_mod.load_yaml(args.params)
        if "runs" in raw:
            from .studies import study_config_for_run  # imports torch: only for study files

            if not args.run:
                raise config_mod.ConfigError(f"{args.params} is a study file: choose a run with "
                                             f"--run (one of {', '.join(raw['runs'])})")
            return study_config_for_run(args.params, args.run, args.set)
        if args.run:
            raise config_mod.ConfigError(f"--run given but {args.params} is not a study file")
        return config_mod.build((raw, str(args.params)), overrides=args.set)
    return config_mod.build(overrides=args.set)


DATA_ACTIONS = ("fetch", "check")


def _data_action_parser() -> argparse.ArgumentParser:
    from .datasets.fetch import CONNECT_TIMEOUT, dataset_specs

    choices = ", ".join(dataset_specs())  # the registry's, so that a new data set is listed

    parser = argparse.ArgumentParser(prog="python -m cnnvit data", description="Fetch the real data "
                                     "sets into a data directory, or check what one holds.")
    sub = parser.add_subparsers(dest="action", required=True)
    p_fetch = sub.add_parser("fetch", help="download, verify and unpack data sets into a data directory "
                             "(a data set already there is left alone)")
    p_fetch.add_argument("names", nargs="+", metavar="NAME", help=f"one or more of {choices}; or all; or "
                         "studies (the data sets the studies' parameter files read)")
    p_fetch.add_argument("--to", type=Path, metavar="DIR", help="data directory (default ~/.cache/cnnvit-data)")
    p_fetch.add_argument("--timeout", type=float, default=CONNECT_TIMEOUT, metavar="SECONDS",
                         help=f"seconds to wait for a server (default {CONNECT_TIMEOUT:g})")
    p_fetch.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    p_check = sub.add_parser("check", help="list each data set of a data directory as present, missing "
                             "or corrupt, with what to do")
    p_check.add_argument("dir", nargs="?", type=Path, help="data directory (default ~/.cache/cnnvit-data)")
    p_check.add_argument("names", nargs="*", metavar="NAME", help=f"only these data sets, of {choices} "
                         "(default: all; then only those a study reads must be present)")
    return parser


def _print_status(status) -> None:
    print(f"{status.name:14s} {status.state:8s} {status.detail}")
    if status.action:
        print(f"{'':23s} -> {status.action}")


def _data_check(data_dir: Path, names: list[str]) -> int:
    """``cnnvit data check [DIR] [NAME ...]``: each data set's status; 0 when the ones that
    matter (those named, else those a study reads) are present, 1 otherwise."""
    from .datasets import fetch

    data_dir = data_dir.expanduser()
    specs = fetch.resolve(names)  # an unknown name fails before the folder is looked at
    needed = None if names else config_mod.needed_by_studies()
    # a folder that is not there is one problem, not one "missing" line per data set
    if not data_dir.is_dir():
        what = "is not a folder" if data_dir.exists() else "does not exist"
        wanted = [s.name for s in specs if needed is None or s.name in needed]
        raise DatasetError(f"data directory {data_dir} {what}; fetch the data sets into it: "
                           f"python -m cnnvit data fetch {' '.join(wanted)} --to {data_dir}")
    print(f"data directory: {data_dir}")
    required, unneeded = [], []
    for spec in specs:
        status = fetch.check_dataset(spec, data_dir)
        if needed is not None and spec.name not in needed and status.state == "missing":
            status = replace(status, detail="not needed by any study (for your own runs only)",
                             action=f"to use it: {status.action.removeprefix('fetch it: ')}")
            unneeded.append(spec.name)
        else:
            required.append(status)
        _print_status(status)
    bad = [s.name for s in required if s.state != "present"]
    if bad:
        print(f"missing or corrupt: {', '.join(bad)} (see above)")
    elif needed is not None:
        print("every data set the studies read is present"
              + (f"; not needed by any study: {', '.join(unneeded)}" if unneeded else ""))
    return 1 if bad else 0


def _studies_named(names: list[str]) -> list[str]:
    """``names`` with ``studies`` replaced by the fetchable data sets the studies read (every
    one, where there are no study files to read)."""
    if "studies" not in names:
        return names
    from .config import needed_by_studies
    from .datasets.fetch import dataset_specs

    needed = needed_by_studies()
    read = [n for n in dataset_specs() if needed is None or n in needed]
    return [m for n in names for m in (read if n == "studies" else [n])]


def data_action(argv: list[str], quiet: bool = False) -> int:
    """``cnnvit data fetch ...`` and ``cnnvit data check ...``: 0 when every data set named is
    present at the end, 1 when ``check`` finds one missing or corrupt, 2 when a fetch failed.
    ``check`` without names requires only the data sets a study reads; the others (CIFAR-100)
    are listed as not needed, and their absence does not count."""
    from .datasets import default_data_dir, fetch

    args = _data_action_parser().parse_args(argv)
    if args.action == "check":
        return _data_check(args.dir or default_data_dir(), args.names)
    data_dir = (args.to or default_data_dir()).expanduser()
    failed = []
    for spec in fetch.resolve(_studies_named(args.names)):
        try:
            status = fetch.fetch_dataset(spec, data_dir, timeout=args.timeout,
                                         progress=not (quiet or args.quiet))
        except CnnvitError as exc:  # say so and go on with the next data set
            print(f"error: {exc}", file=sys.stderr)
            failed.append(spec.name)
            continue
        _print_status(status)
    if failed:
        print(f"error: not fetched: {', '.join(failed)} (see above)", file=sys.stderr)
        return 2
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cnnvit", description="cnnvit: image-classification studies "
                                     "from CNNs to ViTs.", epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p):
        p.add_argument("params", nargs="?", type=Path, help="YAML parameter file (config or study)")
        p.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                       help="override config keys, e.g. optim.lr=0.01 train.epochs=5")
        p.add_argument("--run", help="run name inside a study file")

    p_train = sub.add_parser("train", help="train one run into --out (resumes if interrupted)")
    common(p_train)
    p_train.add_argument("--out", required=True, type=Path, help="run folder to write")
    p_study = sub.add_parser("study", help="train every run of a study file that is not done yet")
    p_study.add_argument("params", type=Path, metavar="PARAMS", help="study parameter file (base: and runs:), "
                         "e.g. params/laptop/01_cifar10_vit_vs_resnet.yaml")
    p_study.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                         help="override config keys in every run, e.g. train.epochs=2 data.root=DIR")
    p_study.add_argument("--runs", metavar="NAME,NAME", help="only these runs (comma-separated run names "
                         "of the study file; default: every run)")
    p_study.add_argument("--out", type=Path, metavar="DIR", help="study folder: one run folder per run under "
                         "DIR/runs/ (default outputs/<profile>/<study>)")
    p_study.add_argument("--data-dir", metavar="DIR", help="folder holding the data sets (cifar10/, "
                         "tiny-imagenet-200/, celeba/; default ~/.cache/cnnvit-data)")
    p_study.add_argument("--dry-run", action="store_true", help="instead of training: two optimizer steps of "
                         "every run (its first seed) at its real size and input resolution, on its real data "
                         "pipeline (a stand-in where its data set is absent) on the CPU, in a temporary folder; "
                         "one line per run, exit 1 if any fails")
    p_report = sub.add_parser("report", help="run every study notebook (unless unchanged) and write "
                              "outputs/<profile>/report.html and report.pdf")
    p_report.add_argument("--profile", default="smoke", help="params/<profile>/ to use (default smoke)")
    p_report.add_argument("--studies", help="comma-separated subset, by number (01,03) or name")
    p_report.add_argument("--data-dir", help="folder holding the data sets (cifar10/, ...)")
    p_report.add_argument("--force", action="store_true", help="execute every study even if unchanged")
    p_report.add_argument("--out", type=Path, help="output folder (default outputs/<profile>)")
    p_report.add_argument("--no-pdf", action="store_true", help="HTML only")
    p_data = sub.add_parser("data", help="load the configured data set and describe it; 'data fetch "
                            "NAME|all --to DIR' downloads data sets, 'data check DIR' checks a data "
                            "directory (see 'data fetch --help')",
                            description="Load the configured data set and describe it. Also: "
                            "'python -m cnnvit data fetch NAME|all --to DIR' and "
                            "'python -m cnnvit data check DIR'.")
    common(p_data)
    p_models = sub.add_parser("models", help="list the curated models; --all PATTERN searches timm's and "
                              "torchvision's models", description="List the curated models, or with --all "
                              "search every model of timm and torchvision's classification models (any of "
                              "them trains by the name printed: model.name=NAME).")
    p_models.add_argument("--all", nargs="?", const="*", metavar="PATTERN", dest="pattern",
                          help="search timm's and torchvision's models: fnmatch pattern such as "
                          "'*vit_tiny*' (no wildcard: matches anywhere in a name; timm:PATTERN or "
                          "torchvision:PATTERN searches one library; default: all)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    return parser


def _report(args) -> int:
    from .report import build_report
    from .report.render import ReportStatus
    from .studies import project_root

    only = [s for s in args.studies.replace(" ", ",").split(",") if s] if args.studies else None
    report, outcomes = build_report(project_root(), args.profile, only, args.data_dir,
                                    args.force, args.out, pdf=not args.no_pdf)
    failed = [o.name for o in outcomes if o.status == ReportStatus.FAILED]
    partial = [o.name for o in outcomes if o.status == ReportStatus.PARTIAL]
    print(f"report: {report}" + ("" if args.no_pdf else f" and {report.with_suffix('.pdf')}"))
    if partial:
        print(f"partial: {', '.join(partial)} (runs that could not train here are listed in the report "
              f"with their projected GPU time)", file=sys.stderr)
    if failed:
        print(f"error: {len(failed)} of {len(outcomes)} studies failed: {', '.join(failed)} "
              f"(their sections in the report show why)", file=sys.stderr)
        return 1
    return 0


def _models(args) -> int:
    from .models import list_models, search_models

    if args.pattern is None:
        _print_curated()
        return 0
    found = search_models(args.pattern, list_models())
    if not found:
        print(f"error: no timm or torchvision model matches {args.pattern!r}", file=sys.stderr)
        return 1
    width = max(len(m.name) for m in found)
    for m in found:
        if not m.weights:
            weights = "no published weights"
        elif m.library == "torchvision":
            weights = f"weights {m.weights[0]}"
        else:  # the first tag is timm's default; NAME.TAG picks another
            weights = f"weights: {', '.join(m.weights[:3])}" + (f" (+{len(m.weights) - 3})" if m.weights[3:] else "")
        print(f"{m.name:{width}s} {m.size:4d} px {'fixed' if m.fixed_size else '     '}  {weights}")
    print(f"{len(found)} models; use one as model.name=NAME (a timm model's weights: NAME.TAG)", file=sys.stderr)
    return 0


KIND_ORDER = {"real": 0, "laptop": 1, "test": 2}
KIND_LABEL = {"real": "real", "laptop": "stand-in (laptop)", "test": "stand-in (test)"}
KIND_LEGEND = ("kind: real = a full-size architecture (the paper profile's models and their kin);",
               "      stand-in (laptop) = a scaled-down model that a CPU trains in minutes (laptop profile);",
               "      stand-in (test) = a tiny model for the smoke profile and the tests.",
               "params: millions, with a 10-class head.",
               "weights: the library serving its published weights (model.pretrained=true); - for none.")


def _print_curated() -> None:
    """The curated models as a table: real models first, then the stand-ins, each with its input
    size, parameter count (with a 10-class head) and published weights."""
    from .models import list_models, model_info, parameter_count

    infos = sorted((model_info(n) for n in list_models()), key=lambda i: (KIND_ORDER[i.kind], i.name))
    rows = [("name", "kind", "input", "params", "weights")]
    for info in infos:
        size = f"{info.native_size:3d} px" + (" fixed" if info.fixed_size else "")
        params = f"{parameter_count(info.name) / 1e6:.2f}M"
        rows.append((info.name, KIND_LABEL[info.kind], size, params, info.hub.library if info.hub else "-"))
    # widths from the cells themselves, so that a new long name cannot break the columns
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = [cell.rjust(w) if i == 3 else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))]
        print("  ".join(cells).rstrip())
    print(f"\n{len(infos)} curated models; any timm or torchvision model too: models --all PATTERN")
    print("\n".join(KIND_LEGEND))


def _study(args) -> int:
    from .studies import load_study, run_study, summary_table

    if args.dry_run:
        return _dry_run(args)
    only = args.runs.split(",") if args.runs else None
    study = load_study(args.params, args.set, out_dir=args.out, only=only, data_dir=args.data_dir)
    results = run_study(study, progress=not args.quiet)
    print(summary_table(study, results).to_string(index=False))
    return 0


def _print_dry_run(result) -> None:
    print(result.line(), file=sys.stdout if result.ok else sys.stderr, flush=True)


def _dry_run(args) -> int:
    from .studies import dry_run_study

    if args.out:
        raise config_mod.ConfigError("--dry-run trains in a temporary folder and writes no study folder: "
                                     "leave out --out")
    only = args.runs.split(",") if args.runs else None
    report = dry_run_study(args.params, args.set, only=only, data_dir=args.data_dir, report=_print_dry_run)
    print(report.summary(), file=sys.stdout if report.ok else sys.stderr, flush=True)
    return 0 if report.ok else 1


def _data(args) -> int:
    from .datasets import dataset_from_config

    cfg = _config(args)
    print(dataset_from_config(cfg.data, cfg.seed).describe())
    return 0


def _train(args) -> int:
    import json

    cfg = _config(args)  # a misspelt key fails here, before torch is imported
    from .records import RunResult
    from .training import train

    out = train(cfg, args.out, progress=not args.quiet)
    # under torchrun: rank 0 reports, unless the launching process (train.nproc > 1) does
    if int(os.environ.get("RANK", 0)) or os.environ.get("CNNVIT_LAUNCHED"):
        return 0
    if not (out / "metrics.json").exists():  # train.nnodes > 1: rank 0 ran on another machine
        return 0
    m = RunResult.from_json(json.loads((out / "metrics.json").read_text()))
    notes = []
    if m.test_top5 is None:
        notes.append("mean over labels")
    elif len(m.test["per_class"]) > 5:  # top-5 says nothing with five classes or fewer
        notes.append(f"top-5 {m.test_top5:.4f}")
    baseline = float("nan") if m.majority_baseline is None else m.majority_baseline  # (older runs lack it)
    notes.append(f"majority baseline {baseline:.4f}")
    print(f"{out}: test accuracy {m.test_accuracy:.4f} ({'; '.join(notes)}), {m.epochs} epochs, "
          f"{m.wall_time_s:.0f}s on {m.device}")
    return 0


COMMANDS = {"report": _report, "models": _models, "study": _study, "data": _data, "train": _train}


def main(argv: list[str] | None = None) -> int:
    """The command line; a user error prints one ``error:`` line and returns 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # `data fetch|check` have their own arguments; `data [PARAMS] --set ...` describes a data set
    first = next((i for i, a in enumerate(argv) if not a.startswith("-")), None)
    data_fetch_or_check = (first is not None and argv[first] == "data" and len(argv) > first + 1
                           and argv[first + 1] in DATA_ACTIONS)
    args = None if data_fetch_or_check else _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    try:
        if data_fetch_or_check:
            return data_action(argv[first + 1:], quiet=bool({"-q", "--quiet"} & set(argv[:first])))
        return COMMANDS[args.command](args)
    except CnnvitError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted; run the same command again to go on (a run resumes from its last "
              "finished epoch, complete runs are kept)", file=sys.stderr)
        return 130
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        print(f"error: no space left on the device writing {exc.filename or 'a file'}; free some space and "
              "run the same command again (the last finished epoch's checkpoint is kept)", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
