"""The JSON Schema of a settings file, committed as docs/settings.schema.json
(`python -m netjail.settings --schema` prints it)."""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue

from netjail.settings.models import Settings


class _FileSchema(GenerateJsonSchema):
    """A file may omit an optional key but never set it to null (the loader refuses null: see
    netjail.settings.load._first_null)."""

    def nullable_schema(self, schema: Any) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])

    def default_schema(self, schema: Any) -> JsonSchemaValue:
        if schema.get("default", ...) is None:
            return self.generate_inner(schema["schema"])
        return super().default_schema(schema)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a settings file, as committed in docs/settings.schema.json."""
    schema = Settings.model_json_schema(by_alias=True, schema_generator=_FileSchema)
    schema["title"] = "netjail settings (srt 0.0.78 compatible)"
    return schema
