"""Data sets shared across domains (CIFAR-10 serves the Vision Mamba chapters and the Emotion-Qwen
forgetting experiment), read through :mod:`compendium.data`."""
