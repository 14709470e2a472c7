"""Built-in telemetry sources: ``neuron-monitor`` (NeuronCores), ``nvml`` (NVIDIA
GPUs, through nvidia-ml-py) and ``host`` (the CPU cores the copies run on, and each
copy's memory). They run in the supervisor, never in a model copy."""
