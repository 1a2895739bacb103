"""Where users already train: a PyTorch Lightning logger and a Hugging Face Trainer callback.

    from epochscope.integrations.lightning import EpochscopeLogger        # pip install "epochscope[lightning]"
    from epochscope.integrations.transformers import EpochscopeCallback   # pip install "epochscope[transformers]"

Both write one bundle per run through the public Recorder, so everything a Recorder gives
(crash-safe segments, strict checkpoints with optimizer and RNG state, resume) holds.
"""

__all__: list[str] = []
