"""CQI analytics over the pump event stream: frames, metrics, what-if replay, limit suggestions, reports."""
