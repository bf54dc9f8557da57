"""JSON Schemas of the documents hesscli prints (one ``<command>.schema.json`` each)."""
