"""The squares ↔ circles domain pair as a cycletools plugin.

Registers two domains (``squares2circles`` and its reverse) with a recipe sized for the
toy data, and a ``cycletools shapes-data DIR`` command that generates that data.
"""

from cycletools import DomainSpec, hookimpl

# Training defaults for `cycletools train --plugin squares2circles` (flags override them):
# small images and a small generator, so a CPU trains it in about a minute.
RECIPE = {"size": 64, "load_size": 72, "ngf": 16, "ndf": 16, "blocks": 3,
          "epochs": 3, "epochs_decay": 2, "lr": 5e-4, "lambda_identity": 0.0}


@hookimpl
def register_domains(register):
    common = dict(family="shapes", architecture={"arch": "resnet", "ngf": 16, "n_blocks": 3},
                  train_defaults=RECIPE, inference_size=64)
    register(DomainSpec(name="squares2circles", reverse="circles2squares", title="Squares → circles",
                        source="square", target="circle", run_direction="a2b",
                        description="Rounds off dark squares into circles.", **common))
    register(DomainSpec(name="circles2squares", reverse="squares2circles", title="Circles → squares",
                        source="circle", target="square", run_direction="b2a",
                        description="Squares off dark circles.", **common))


@hookimpl
def register_commands(commands):
    parser = commands.add_parser("shapes-data", help="write the squares/circles toy dataset (cycletools-shapes)")
    parser.add_argument("folder", help="where to write trainA/, trainB/, testA/, testB/")
    parser.add_argument("--count", type=int, default=48, help="training images per domain (default: 48)")
    parser.set_defaults(handler=make_data)


def make_data(args):
    from cycletools.data.toy import make_shapes_dataset

    root = make_shapes_dataset(args.folder, count=args.count, size=64, test_count=4)
    print(f"wrote {args.count} squares and {args.count} circles (plus 4 + 4 test images) to {root}")
    return 0
