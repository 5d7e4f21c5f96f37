"""Hub ingest: pure message processing, a batching COPY writer, and the MQTT consumer around them."""
