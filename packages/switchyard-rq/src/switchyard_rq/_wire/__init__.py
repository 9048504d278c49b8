"""The wire: connections, key names, the job hash's format and the Lua scripts. The other rooms
(producer, consumer, operations) reach Redis through what this package defines."""
