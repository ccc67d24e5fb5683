"""Two workers: supernet and final training under `multi_worker` (MultiWorkerMirroredStrategy) on 127.0.0.1.

Each worker is a process with its own `TF_CONFIG` (a cluster of two workers on free local ports),
set before TensorFlow starts; the collectives go over gRPC. Both build the same seeded pipelines,
and DATA auto-sharding gives each its half of every global batch (lqsearch.supernet.training.distribute).
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from lqsearch.testing.network import free_port

#: The probe's spaces and nets have no BatchNorm, so 2 workers compute what one process computes up
#: to float rounding (sums over 8 + 8 examples instead of 16, and gradients summed over workers); the
#: losses measured agree to about 1e-7 relative, 1e-5 leaves room for other CPUs' kernels.
TOLERANCE = 1e-5
PROBE = [sys.executable, "-m", "lqsearch.testing.supernet_probe"]


def _result(stdout: str) -> dict:
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.heavy  # three TensorFlow processes, about 70 s on 2 cores
def test_two_workers_train_the_supernet_and_the_final_model_as_one_process_does():
    ports = [free_port(), free_port()]
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    quiet = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    workers = [
        subprocess.Popen([*PROBE, "multi_worker", "--final", "--steps", "4"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True,
                         env=dict(quiet, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker",
                                                                                            "index": index}})))
        for index in range(2)
    ]
    single = subprocess.run([*PROBE, "default", "--final", "--steps", "4"], capture_output=True, text=True,
                            env=quiet, timeout=300)
    outputs = []
    for worker in workers:
        try:
            stdout, stderr = worker.communicate(timeout=300)
        finally:
            worker.kill()
        assert worker.returncode == 0, stderr[-3000:]
        outputs.append(_result(stdout))
    assert single.returncode == 0, single.stderr[-3000:]
    alone = _result(single.stdout)
    print(json.dumps({"workers": outputs, "one process": alone}))  # the numbers compared, for `pytest -s`
    assert [o["replicas"] for o in outputs] == [2, 2] and alone["replicas"] == 1
    for output in outputs:
        for key in ("supernet_losses", "final_losses"):
            ours = output[key]["plain"] if key == "supernet_losses" else output[key]
            theirs = alone[key]["plain"] if key == "supernet_losses" else alone[key]
            np.testing.assert_allclose(ours, theirs, rtol=TOLERANCE, err_msg=key)
