"""The `--allow-damaged` option shared by the commands that read bundles to show them."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import click

from epochscope.archives.errors import DamagedBundleError

allow_damaged_option = click.option(
    "--allow-damaged", is_flag=True,
    help="Go on with a bundle that has damage: use what passes its checks and say what did not "
         "(pages show a banner). Without it such a bundle is refused.")


@contextlib.contextmanager
def damage_hint() -> Iterator[None]:
    """Refusals of damaged bundles name the way on."""
    try:
        yield
    except DamagedBundleError as exc:
        raise DamagedBundleError(f"{exc}; --allow-damaged shows what is intact", exc.findings) from None
