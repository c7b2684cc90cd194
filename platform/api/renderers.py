"""Renderers for leaderboard exports, chosen with ?format=csv|latex|bibtex or Accept.

The view turns its response data into the file's content (`export_text`), so one renderer
serves suite boards, task boards and snapshots alike. Error responses are always JSON
(ExportViewMixin.finalize_response).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from rest_framework.renderers import BaseRenderer


class Exporter(Protocol):
    def export_text(self, data: Any, fmt: str) -> str: ...

    def export_filename(self, data: Any, fmt: str) -> str: ...


class _ExportRenderer(BaseRenderer):
    charset = "utf-8"
    extension = ""

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        context = renderer_context or {}
        view: Exporter = context["view"]
        text = view.export_text(data, self.format)
        response = context.get("response")
        if response is not None:
            filename = f"{view.export_filename(data, self.format)}.{self.extension}"
            response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return text.encode(self.charset)


class CSVRenderer(_ExportRenderer):
    media_type = "text/csv"
    format = "csv"
    extension = "csv"


class LaTeXRenderer(_ExportRenderer):
    media_type = "application/x-latex"
    format = "latex"
    extension = "tex"


class BibTeXRenderer(_ExportRenderer):
    media_type = "application/x-bibtex"
    format = "bibtex"
    extension = "bib"
