"""smartpump: an open, vendor-neutral smart infusion system (not a certified medical device).

The package's version is stated here once; the build reads it from this line.
"""

__all__ = ["__version__"]

__version__ = "0.1.0"
