"""griffe extension: turn the Sphinx roles of the docstrings (:func:`x`, :class:`~x`, ...) into code spans.

The docstrings are written to read well in ``help()``; mkdocs renders markdown, where a role would show up
literally.
"""

from __future__ import annotations

import re

from griffe import Extension

ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|attr|data|obj|exc|const):`~?([^`]+)`")


class SphinxRolesToCode(Extension):
    def on_object(self, *, obj, **kwargs) -> None:
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(r"`\1`", obj.docstring.value)
