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

Each hook receives a callback or object, registers through it and returns nothing. Implement only
the hooks you need. A plugin is all or nothing: if any of its hooks raises, returns something or
registers anything invalid, none of its registrations are kept and ``cycletools plugins`` says why.
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
    returns the exit status. The name must not be a cycletools command. The hook is called
    once on a scratch parser when plugins load (to check it) and again for the real CLI.
    Keep imports inside the handler so ``--help`` stays fast.
    """


@hookspec
def register_architectures(register):
    """Add generator architectures: ``register(name, factory)``.

    ``factory(**config)`` gets a weights file's config without its ``arch`` key (which names the
    factory) and returns a ``torch.nn.Module``; its ``config`` attribute should be the dict that
    rebuilds it, ``arch`` included (cycletools sets it to the config it was built from when missing).
    Domains and weights files can then use ``{"arch": name, ...}``.
    """


@hookspec
def register_weights_adapters(register):
    """Add adapters for foreign checkpoints: ``register(name, adapter)``.

    Adapters are tried, in the order plugins load (built-ins first, then by entry-point name),
    when a state_dict is neither in the official CycleGAN layout nor a file with an embedded
    config. ``adapter(state_dict)`` gets a copy and returns ``None`` if it does not recognise the
    checkpoint, else ``(state_dict, config)``: tensors named for the architecture that
    ``config["arch"]`` names. The first result that builds and loads is used; an adapter that raises
    or returns anything else is reported and the next one is tried.
    """
