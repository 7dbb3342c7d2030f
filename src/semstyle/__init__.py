"""semstyle: GAN-based semantic image style transfer."""

__version__ = "0.1.0"
