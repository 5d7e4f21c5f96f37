"""anju edge agent: polls an estate's meters and gates, keeps records in a durable outbox, ships them.

Concurrency: one asyncio event loop per agent process. Every poller, listener and the publisher is a
task on it; blocking calls that could stall it (broker connects, outbox drains) go through
``asyncio.to_thread``. paho's network threads (``anju_mqtt.MqttLink``) reach the loop only through
``call_soon_threadsafe``, except where a message is committed to the outbox inside paho's callback so
that the PUBACK follows the commit.
"""

__version__ = "0.1.0"
