"""Formatters: turn explanations into pictures and HTML (no framework imports)."""

from .html import image_data_uri, render_report

__all__ = ["image_data_uri", "render_report"]
