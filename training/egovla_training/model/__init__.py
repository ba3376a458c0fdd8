"""The EgoVLA model: configuration, prompt, network, loss and checkpoints."""
