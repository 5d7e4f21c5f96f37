"""Simulated estates for anju: households with ground truth, Modbus meters, face gates, the tenancy system.

Concurrency: asyncio. An estate (``anju.device_sims.estate``, ``anju sim``) runs its Modbus servers and its
gate source as tasks on one event loop; paho's network thread reaches it only through
``call_soon_threadsafe``. The one exception is a test fixture, not a deployable: the self-reporting meter
fleet (``anju.device_sims.reporting_meters``) is driven from synchronous fault tests on a plain thread.
"""
