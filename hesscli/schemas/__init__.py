"""JSON Schemas of the documents hesscli prints (``<command>.schema.json``)."""
