"""anju hub: ingest, storage, detection, cases, tenancy filing and the inspector API/UI.

Concurrency: threads, no event loop of our own. The ingest writer and the detection/filing pipeline are
supervised threads (``anju.hub.monitor.run_supervised``); paho's network thread (``anju_mqtt.make_client``)
only enqueues messages for the writer; uvicorn serves the API, whose views are plain functions that
FastAPI runs in its thread pool, each with its own database connection.
"""
