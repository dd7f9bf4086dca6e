"""Front ends: D-Bus and the Unix socket; both only parse, call the engine and map errors."""
