"""Jobs: the queue of long work (training, rescoring, learning, drift, fairness), its runner
and the registry of each kind's handler; no domain lives here (``service.background``)."""
