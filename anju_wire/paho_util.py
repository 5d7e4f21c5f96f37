"""One helper shared by every paho-mqtt client in anju (edge agent, hub, simulators, tests).

paho keeps a socket pair to wake its network thread. ``loop_start()`` makes a new pair without closing
the previous one, and otherwise only ``Client.__del__`` closes them; when the client sits in a
reference cycle (its callbacks are bound methods of the object that owns it) the garbage collector may
finalise the sockets before the client, and Python reports them as unclosed. Closing the pair as soon
as the network thread is gone makes the release deterministic.
"""

from __future__ import annotations

import paho.mqtt.client as paho


def stop_loop(client: paho.Client) -> None:
    """Stop the client's network thread (if any) and close its wake-up socket pair."""
    client.loop_stop()
    client._reset_sockets(sockpair_only=True)
