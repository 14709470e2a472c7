"""The supervisor process: the run (setup, plan, events, results file, launcher), one
configuration at a time (config_run), the copies' processes, the zygote's keeper,
resource sampling, the event stream, load-failure sparing."""
