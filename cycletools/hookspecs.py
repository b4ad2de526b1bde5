"""The hooks a cycletools plugin can implement (pluggy, project name ``cycletools``).

A plugin is a module (or object) with functions decorated ``@hookimpl``, registered
through the ``cycletools`` entry-point group::

    # pyproject.toml of the plugin's distribution
    [project.entry-points.cycletools]
    my_domains = "my_package.plugin"

    # my_package/plugin.py
    from cycletools import DomainSpec, hookimpl

    @hookimpl
    def register_domains(register):
        register(DomainSpec(name="cats2dogs", title="Cats → dogs", family="object", source="cat", target="dog"))

Each hook receives a callback or object and returns nothing. Implement only the hooks you need.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("cycletools")
hookimpl = pluggy.HookimplMarker("cycletools")


@hookspec
def register_domains(register):
    """Register domain pairs: call ``register(DomainSpec(...))`` once per domain."""


@hookspec
def register_commands(commands):
    """Add CLI subcommands: ``commands`` is the argparse sub-parsers object of ``cycletools``.

    Create a parser with ``commands.add_parser("name", help=...)`` and give it
    ``set_defaults(handler=function)``; the function gets the parsed arguments and
    returns the exit status. Keep imports inside the handler so ``--help`` stays fast.
    """


@hookspec
def register_architectures(register):
    """Add generator architectures: ``register(name, factory)``.

    ``factory(**config)`` builds an ``nn.Module`` from a weights file's config (the
    ``arch`` key names the factory). Domains and weights files can then use ``arch = name``.
    """


@hookspec
def register_weights_adapters(register):
    """Add adapters for foreign checkpoints: ``register(name, adapter)``.

    ``adapter(state_dict)`` returns ``(state_dict, config)`` mapped onto a known
    architecture when it recognises the checkpoint, else ``None``. Adapters are tried
    when a ``.pth`` file is not in the official CycleGAN layout.
    """
