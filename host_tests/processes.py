"""Ending the processes tests start (servers, simulators, brokers)."""

import subprocess


def stop_process(proc, seconds=5):
    """SIGTERM, and SIGKILL when it is not gone within `seconds`: a test
    must never leave a server behind, nor hang on one."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
