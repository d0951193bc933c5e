"""Our own OpenAPI -> msgspec generator for ``proxy/schemas``.

Run ``python -m proxy.codegen --spec ../shared/openapi/openapi.yaml --out proxy/schemas``.
The pipeline is: :mod:`~proxy.codegen.loader` (YAML -> document, plus our
:mod:`~proxy.codegen.overrides`), :mod:`~proxy.codegen.translate` (schemas -> the
:mod:`~proxy.codegen.model` representation), :mod:`~proxy.codegen.plan` (names and module
placement, per :mod:`~proxy.codegen.groups`), :mod:`~proxy.codegen.emit` and
:mod:`~proxy.codegen.routes` (text, laid out by :mod:`~proxy.codegen.layout`).

Only names and values are taken from the spec; no descriptions or titles are copied.
PyYAML is needed here only (the ``codegen`` extra); generated code imports just msgspec.
"""
