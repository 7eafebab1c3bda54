"""Pump <-> server messages: the versioned wire schema, the Transport interface and its implementations."""
