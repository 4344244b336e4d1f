"""``python -m hs_aeunmix``: the ``hs-aeunmix`` command (see :mod:`hs_aeunmix_cli`).

The command's front stays a package of its own: ``import hs_aeunmix`` must
install the ``"ae"`` route, which imports HyperSpy (about 0.8 s), while
``--help`` and argument errors answer from the standard library alone.
"""

from hs_aeunmix_cli import main

if __name__ == "__main__":
    raise SystemExit(main())
