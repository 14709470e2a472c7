"""What crosses between processes: the protocol messages and their framing, live objects
serialised for copies (transfer), inputs built from descriptions (tensors), the compile
request and result."""
