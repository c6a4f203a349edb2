"""HTTP serving shared by the relay and the codec endpoint: background server, header deadline, body limits."""
